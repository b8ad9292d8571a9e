package tubetrace;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;

import org.neo4j.graphdb.Direction;
import org.neo4j.graphdb.Label;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.Transaction;
import org.neo4j.kernel.api.KernelTransaction;
import org.neo4j.kernel.impl.coreapi.InternalTransaction;
import org.neo4j.procedure.Context;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;
import org.neo4j.storageengine.api.RelationshipSelection;
import org.neo4j.token.api.TokenConstants;
import org.neo4j.values.storable.BooleanValue;
import org.neo4j.values.storable.Value;

/**
 * The clusters of a window, in the server: the rule of engine/analysis/outbreak.py's
 * group_clusters (which groups the same links read by cypher/analysis.cypher's
 * positive_registrations, and stays the reference the tests compare this with).
 *
 * <p>The members are the persons of the registrations inside [since, until] of the given
 * positive tubes. Two members are linked when registrations of theirs inside the window
 * shared a pooled tube (pool_size > 1) or were at the same compound within linkDays days of
 * each other (a compound's registrations sorted by day are cut where more than linkDays days
 * pass: each segment joins its persons). Each cluster comes with its members in person_id
 * order and, for each, the registration shown for them (the earliest positive one by day and
 * tube code, with its residence district), its compounds and districts (of the members'
 * registrations inside the window), the days of its positive registrations, and the tubes
 * and compounds that link it.
 *
 * <p>Graph: (Registration)-[:OF_PERSON]->(Person), (Registration)-[:INTO_TUBE]->(Tube),
 * (Registration)-[:AT_COMPOUND]->(Compound); a residence fallback by Registration
 * residence_code to Compound code. Read only.
 */
public class Clusters {
    @Context public Transaction tx;

    // What the grouping holds, in bytes, counted against the transaction's memory limits
    // (Cursors.track); estimates of the JVM's objects, on the high side.
    static final long MEMBER_BYTES = 768; // its number, id, shown registration, sets, lists
    static final long REGISTRATION_BYTES = 128; // a pool's and a compound's entry, its day

    /** One cluster; the member lists are aligned (member i shown as day i, tube i...). */
    public static class Cluster {
        public List<String> members;
        public List<String> member_days;
        public List<String> member_tubes;
        public List<String> member_districts;
        public List<String> compounds;
        public List<String> districts;
        public List<String> days;
        public List<String> pool_links;
        public List<String> compound_links;
    }

    @Procedure(name = "tubetrace.clusters", mode = Mode.READ)
    @Description(
            "tubetrace.clusters(tubes, since, until, linkDays): the connected groups of the"
                    + " persons of the tubes' registrations inside [since, until], linked by a"
                    + " shared pooled tube or the same compound within linkDays days.")
    public Stream<Cluster> clusters(
            @Name("tubes") List<Node> tubes,
            @Name("since") String since,
            @Name("until") String until,
            @Name("linkDays") long linkDays) {
        if (tubes == null || tubes.isEmpty() || since == null || until == null) {
            return Stream.empty();
        }
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        int ofPerson = ktx.tokenRead().relationshipType("OF_PERSON");
        int intoTube = ktx.tokenRead().relationshipType("INTO_TUBE");
        int atCompound = ktx.tokenRead().relationshipType("AT_COMPOUND");
        if (ofPerson == TokenConstants.NO_TOKEN || intoTube == TokenConstants.NO_TOKEN) {
            return Stream.empty();
        }
        try (Cursors g = new Cursors(ktx)) {
            return new Grouping(tx, g, since, until, linkDays, ofPerson, intoTube, atCompound)
                    .run(tubes)
                    .stream();
        }
    }

    /** One call's reads and sets. Persons are numbered in the order they are found. */
    private static final class Grouping {
        final Transaction tx;
        final Cursors g;
        final String since;
        final String until;
        final long linkDays;
        final RelationshipSelection tubeRegistrations;
        final RelationshipSelection registrationPerson;
        final RelationshipSelection personRegistrations;
        final RelationshipSelection registrationTube;
        final RelationshipSelection registrationCompound;
        final int day;
        final int poolSize;
        final int code;
        final int personId;
        final int known;
        final int districtCode;
        final int residenceCode;
        final Map<Long, Integer> index = new HashMap<>(); // person node -> number
        final List<String> ids = new ArrayList<>(); // number -> person_id
        final List<String[]> shown = new ArrayList<>(); // number -> {day, tube, district}
        final List<TreeSet<String>> positiveDays = new ArrayList<>();
        final Map<String, String> residenceDistricts = new HashMap<>(); // code -> district
        int[] parent = new int[0];

        Grouping(Transaction tx, Cursors g, String since, String until, long linkDays,
                int ofPerson, int intoTube, int atCompound) {
            this.tx = tx;
            this.g = g;
            this.since = since;
            this.until = until;
            this.linkDays = linkDays;
            this.tubeRegistrations = RelationshipSelection.selection(intoTube, Direction.INCOMING);
            this.registrationPerson = RelationshipSelection.selection(ofPerson, Direction.OUTGOING);
            this.personRegistrations = RelationshipSelection.selection(ofPerson, Direction.INCOMING);
            this.registrationTube = RelationshipSelection.selection(intoTube, Direction.OUTGOING);
            this.registrationCompound = atCompound == TokenConstants.NO_TOKEN
                    ? null
                    : RelationshipSelection.selection(atCompound, Direction.OUTGOING);
            this.day = g.key("day");
            this.poolSize = g.key("pool_size");
            this.code = g.key("code");
            this.personId = g.key("person_id");
            this.known = g.key("known");
            this.districtCode = g.key("district_code");
            this.residenceCode = g.key("residence_code");
        }

        boolean within(String value) {
            return Cursors.within(value, since, until);
        }

        /** The registration's compound node, or -1. */
        long compoundOf(long registration) {
            if (registrationCompound == null) {
                return -1;
            }
            return g.neighbour(registration, registrationCompound);
        }

        boolean isKnown(long compound) {
            Value v = g.property(compound, known);
            return v instanceof BooleanValue b && b.booleanValue();
        }

        /** CASE WHEN c.known THEN c.district_code END */
        String knownDistrict(long compound) {
            return compound >= 0 && isKnown(compound) ? g.text(compound, districtCode) : null;
        }

        /** The residence: the own compound's district when it is known, else the
         * residence_code compound's when that is known, else 'unassigned'. */
        String residence(long registration, long compound) {
            String district;
            if (compound >= 0 && isKnown(compound)) {
                district = g.text(compound, districtCode);
            } else {
                district = fallback(g.text(registration, residenceCode));
            }
            return district == null ? "unassigned" : district;
        }

        String fallback(String residence) {
            if (residence == null) {
                return null;
            }
            if (!residenceDistricts.containsKey(residence)) {
                Node c = tx.findNode(Label.label("Compound"), "code", residence);
                Object isKnown = c == null ? null : c.getProperty("known", null);
                Object district = c == null ? null : c.getProperty("district_code", null);
                residenceDistricts.put(residence,
                        Boolean.TRUE.equals(isKnown) && district instanceof String s ? s : null);
            }
            return residenceDistricts.get(residence);
        }

        int member(long person) {
            Integer n = index.get(person);
            if (n == null) {
                g.track(MEMBER_BYTES);
                n = ids.size();
                index.put(person, n);
                ids.add(g.text(person, personId));
                shown.add(null);
                positiveDays.add(new TreeSet<>());
            }
            return n;
        }

        @SuppressWarnings("removal") // Node.getId(): deprecated in 5, still there
        List<Cluster> run(List<Node> tubes) {
            // The members, each shown by its earliest positive registration (day, tube).
            for (Node tube : tubes) {
                long t = tube.getId();
                String tubeCode = g.text(t, code);
                for (long r : g.neighbours(t, tubeRegistrations)) {
                    String d = g.text(r, day);
                    if (!within(d)) {
                        continue;
                    }
                    for (long p : g.neighbours(r, registrationPerson)) {
                        int m = member(p);
                        positiveDays.get(m).add(d);
                        String[] s = shown.get(m);
                        if (s == null || Cursors.compare(d, s[0]) < 0
                                || (d.equals(s[0]) && Cursors.compare(tubeCode, s[1]) < 0)) {
                            shown.set(m, new String[] {d, tubeCode, residence(r, compoundOf(r))});
                        }
                    }
                }
            }
            int n = ids.size();
            parent = new int[n];
            for (int i = 0; i < n; i++) {
                parent[i] = i;
            }
            // Their registrations inside the window: what links them.
            Map<String, List<Integer>> pools = new LinkedHashMap<>();
            Map<String, List<Object[]>> atCompound = new LinkedHashMap<>();
            List<TreeSet<String>> compounds = new ArrayList<>(n);
            List<TreeSet<String>> districts = new ArrayList<>(n);
            List<Map.Entry<Long, Integer>> persons = new ArrayList<>(index.entrySet());
            for (int i = 0; i < n; i++) {
                compounds.add(new TreeSet<>());
                districts.add(new TreeSet<>());
            }
            for (Map.Entry<Long, Integer> person : persons) {
                int m = person.getValue();
                for (long r : g.neighbours(person.getKey(), personRegistrations)) {
                    String d = g.text(r, day);
                    if (!within(d)) {
                        continue;
                    }
                    long[] tube = g.neighbours(r, registrationTube);
                    if (tube.length == 0) {
                        continue;
                    }
                    g.track(REGISTRATION_BYTES);
                    boolean pooled = Cursors.pooled(g.property(r, poolSize));
                    long c = compoundOf(r);
                    String compoundCode = c >= 0 ? g.text(c, code) : null;
                    for (long t : tube) {
                        if (pooled) {
                            pools.computeIfAbsent(g.text(t, code), k -> new ArrayList<>()).add(m);
                        }
                        if (compoundCode != null) {
                            compounds.get(m).add(compoundCode);
                            atCompound.computeIfAbsent(compoundCode, k -> new ArrayList<>())
                                    .add(new Object[] {d, ids.get(m), m});
                        }
                        String district = knownDistrict(c);
                        if (district != null) {
                            districts.get(m).add(district);
                        }
                    }
                }
            }
            Map<String, Integer> poolLinks = new LinkedHashMap<>(); // tube -> a member
            for (Map.Entry<String, List<Integer>> pool : pools.entrySet()) {
                TreeSet<Integer> in = new TreeSet<>(pool.getValue());
                if (in.size() > 1) {
                    int first = in.first();
                    for (int other : in) {
                        union(first, other);
                    }
                    poolLinks.put(pool.getKey(), first);
                }
            }
            List<Object[]> compoundLinks = new ArrayList<>(); // {code, a member}
            for (Map.Entry<String, List<Object[]>> at : atCompound.entrySet()) {
                List<Object[]> entries = at.getValue();
                entries.sort((a, b) -> {
                    int c = ((String) a[0]).compareTo((String) b[0]);
                    return c != 0 ? c : Cursors.compare((String) a[1], (String) b[1]);
                });
                java.time.LocalDate last = null;
                TreeSet<Integer> segment = new TreeSet<>();
                for (Object[] e : entries) {
                    java.time.LocalDate d = java.time.LocalDate.parse((String) e[0]);
                    if (last != null && java.time.temporal.ChronoUnit.DAYS.between(last, d)
                            > linkDays) {
                        link(at.getKey(), segment, compoundLinks);
                        segment = new TreeSet<>();
                    }
                    segment.add((Integer) e[2]);
                    last = d;
                }
                link(at.getKey(), segment, compoundLinks);
            }
            // One cluster per root, members in person_id order.
            Map<Integer, TreeMap<String, Integer>> groups = new LinkedHashMap<>();
            for (int m = 0; m < n; m++) {
                groups.computeIfAbsent(find(m), k -> new TreeMap<>()).put(ids.get(m), m);
            }
            Map<Integer, Cluster> byRoot = new LinkedHashMap<>();
            for (Map.Entry<Integer, TreeMap<String, Integer>> group : groups.entrySet()) {
                Cluster c = new Cluster();
                c.members = new ArrayList<>(group.getValue().keySet());
                c.member_days = new ArrayList<>();
                c.member_tubes = new ArrayList<>();
                c.member_districts = new ArrayList<>();
                TreeSet<String> cs = new TreeSet<>();
                TreeSet<String> ds = new TreeSet<>();
                TreeSet<String> days = new TreeSet<>();
                for (int m : group.getValue().values()) {
                    String[] s = shown.get(m);
                    c.member_days.add(s[0]);
                    c.member_tubes.add(s[1]);
                    c.member_districts.add(s[2]);
                    cs.addAll(compounds.get(m));
                    ds.addAll(districts.get(m));
                    days.addAll(positiveDays.get(m));
                }
                c.compounds = new ArrayList<>(cs);
                c.districts = new ArrayList<>(ds);
                c.days = new ArrayList<>(days);
                c.pool_links = new ArrayList<>();
                c.compound_links = new ArrayList<>();
                byRoot.put(group.getKey(), c);
            }
            for (Map.Entry<String, Integer> link : poolLinks.entrySet()) {
                byRoot.get(find(link.getValue())).pool_links.add(link.getKey());
            }
            Map<Integer, TreeSet<String>> linkedCompounds = new HashMap<>();
            for (Object[] link : compoundLinks) {
                linkedCompounds.computeIfAbsent(find((Integer) link[1]), k -> new TreeSet<>())
                        .add((String) link[0]);
            }
            for (Map.Entry<Integer, TreeSet<String>> linked : linkedCompounds.entrySet()) {
                byRoot.get(linked.getKey()).compound_links.addAll(linked.getValue());
            }
            for (Cluster c : byRoot.values()) {
                c.pool_links.sort(null);
            }
            return new ArrayList<>(byRoot.values());
        }

        void link(String compound, TreeSet<Integer> segment, List<Object[]> out) {
            if (segment.size() > 1) {
                int first = segment.first();
                for (int other : segment) {
                    union(first, other);
                }
                out.add(new Object[] {compound, first});
            }
        }

        int find(int x) {
            int root = x;
            while (parent[root] != root) {
                root = parent[root];
            }
            while (parent[x] != root) {
                int next = parent[x];
                parent[x] = root;
                x = next;
            }
            return root;
        }

        void union(int a, int b) {
            int ra = find(a);
            int rb = find(b);
            if (ra != rb) {
                parent[Math.max(ra, rb)] = Math.min(ra, rb);
            }
        }
    }
}
