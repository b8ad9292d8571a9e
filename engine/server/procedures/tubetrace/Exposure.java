package tubetrace;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import org.eclipse.collections.api.tuple.primitive.LongObjectPair;
import org.eclipse.collections.impl.map.mutable.primitive.LongObjectHashMap;
import org.eclipse.collections.impl.set.mutable.primitive.LongHashSet;
import org.neo4j.graphdb.Direction;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.Transaction;
import org.neo4j.internal.kernel.api.TokenRead;
import org.neo4j.kernel.api.KernelTransaction;
import org.neo4j.kernel.impl.coreapi.InternalTransaction;
import org.neo4j.procedure.Context;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;
import org.neo4j.storageengine.api.RelationshipSelection;
import org.neo4j.token.api.TokenConstants;
import org.neo4j.values.ElementIdMapper;
import org.neo4j.values.storable.Value;

/**
 * Exposure rings, breadth-first, in the server: the rule of cypher/analysis.cypher's
 * exposure_rings (which calls this) without a Cypher row per step.
 *
 * <p>Ring k: the persons at co-pool distance k from the subject inside [since, until]. Each
 * level takes the pooled tubes of the ring before that no earlier level used (each tube
 * expanded once), then the persons in them that no earlier level holds. Two registrations
 * are co-pooled when both have pool_size > 1 and a day inside the window; a tube with a
 * `pool_day` (engine/model.py: all its registrations pooled and of that day) is judged by it
 * and its members taken without reading their registrations' day. Each person carries the
 * earliest (day, tube code, registration element id) that put them in their ring.
 *
 * <p>It answers one row of parallel lists in page order (depth, person_id), from after
 * (afterDepth, afterPerson) on: the caller's page needs no Cypher row, sort or collect per
 * member (two thirds of the query's time at depth 3 before, docs/analysis.md).
 *
 * <p>Graph: (Registration)-[:OF_PERSON]->(Person), (Registration)-[:INTO_TUBE]->(Tube); a
 * registration has one of each (loaders create both with it, nothing moves them), so the
 * walk stops at the first. Read only; it holds nothing beyond the sets of one call. It reads
 * through the kernel's cursors (one of each kind, reused for every node), where the public
 * Node API allocated a cursor per call and an entity per node reached: half the time of the
 * same walk (Cursors); node ids in primitive sets (no Long boxed per node).
 */
public class Exposure {
    @Context public Transaction tx;

    // What the walk holds, in bytes, counted against the transaction's memory limits
    // (Cursors.track); estimates of the JVM's objects, on the high side.
    static final long TUBE_BYTES = 96; // a set and a map entry, {pool_day, code}
    static final long PERSON_BYTES = 80; // a set and a map entry, its link (Via)
    static final long MEMBER_BYTES = 320; // a Member, its four strings, five list entries

    /** One ring member: its depth, the person and the (day, tube, registration) of its link. */
    private record Member(long depth, String personId, String day, String tubeCode,
            String registration) {}

    /** The rings as parallel lists, one entry a member, in page order. */
    public static class Rings {
        public List<Long> depths = new ArrayList<>();
        public List<String> person_ids = new ArrayList<>();
        public List<String> days = new ArrayList<>();
        public List<String> tube_codes = new ArrayList<>();
        public List<String> registrations = new ArrayList<>();
    }

    @Procedure(name = "tubetrace.exposure", mode = Mode.READ)
    @Description(
            "tubetrace.exposure(person, since, until, depth, afterDepth = 0, afterPerson = ''):"
                    + " the persons at co-pool distance 1..depth from person inside [since, until]"
                    + " (days as YYYY-MM-DD) after (afterDepth, afterPerson), in that order, each"
                    + " with the earliest (day, tube_code, registration) that put them in their"
                    + " ring; one row of parallel lists.")
    public Stream<Rings> exposure(
            @Name("person") Node person,
            @Name("since") String since,
            @Name("until") String until,
            @Name("depth") long depth,
            @Name(value = "afterDepth", defaultValue = "0") long afterDepth,
            @Name(value = "afterPerson", defaultValue = "") String afterPerson) {
        return Stream.of(rings(person, since, until, depth, afterDepth, afterPerson));
    }

    private Rings rings(Node person, String since, String until, long depth, long afterDepth,
            String afterPerson) {
        Rings page = new Rings();
        List<Member> out = new ArrayList<>();
        if (person == null || since == null || until == null) {
            return page;
        }
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        TokenRead tokens = ktx.tokenRead();
        int ofPerson = tokens.relationshipType("OF_PERSON");
        int intoTube = tokens.relationshipType("INTO_TUBE");
        if (ofPerson == TokenConstants.NO_TOKEN || intoTube == TokenConstants.NO_TOKEN) {
            return page;
        }
        ElementIdMapper ids = ((InternalTransaction) tx).elementIdMapper();
        try (Walk walk = new Walk(ktx, since, until)) {
            RelationshipSelection personRegistrations =
                    RelationshipSelection.selection(ofPerson, Direction.INCOMING);
            RelationshipSelection registrationTube =
                    RelationshipSelection.selection(intoTube, Direction.OUTGOING);
            RelationshipSelection tubeRegistrations =
                    RelationshipSelection.selection(intoTube, Direction.INCOMING);
            RelationshipSelection registrationPerson =
                    RelationshipSelection.selection(ofPerson, Direction.OUTGOING);
            // Node ids in primitive sets and maps: no Long boxed per node. Each id is read
            // inside this one transaction, so a deleted node's id cannot be taken again meanwhile.
            LongHashSet usedTubes = new LongHashSet();
            LongHashSet seen = new LongHashSet();
            seen.add(idOf(person));
            long[] frontier = {idOf(person)};
            for (long level = 1; level <= depth && frontier.length > 0; level++) {
                // The level's tubes: pooled, inside the window, not expanded before; with
                // each its (pool_day, code). A registration has one tube and one person.
                LongObjectHashMap<String[]> tubes = new LongObjectHashMap<>();
                for (long f : frontier) {
                    for (long r : walk.neighbours(f, personRegistrations)) {
                        long t = walk.neighbour(r, registrationTube);
                        if (t < 0 || usedTubes.contains(t) || tubes.containsKey(t)) {
                            continue;
                        }
                        Value[] tube = walk.tube(t);
                        boolean inside = tube[0] == null
                                ? walk.pooledInside(r) != null
                                // A pool_day that is not text compares with no day (as in Cypher).
                                : walk.within(text(tube[0]));
                        if (inside) {
                            walk.graph.track(TUBE_BYTES);
                            tubes.put(t, new String[] {text(tube[0]), text(tube[1])});
                        }
                    }
                }
                tubes.forEachKey(usedTubes::add);
                // Their persons not seen before, each with its least (day, tube, registration).
                LongObjectHashMap<Via> found = new LongObjectHashMap<>();
                for (LongObjectPair<String[]> tube : tubes.keyValuesView()) {
                    String poolDay = tube.getTwo()[0];
                    String code = tube.getTwo()[1];
                    for (long r : walk.neighbours(tube.getOne(), tubeRegistrations)) {
                        String day = poolDay;
                        if (day == null) {
                            day = walk.pooledInside(r);
                            if (day == null) {
                                continue;
                            }
                        }
                        long q = walk.neighbour(r, registrationPerson);
                        if (q < 0 || seen.contains(q)) {
                            continue;
                        }
                        Via best = found.get(q);
                        if (best == null) {
                            walk.graph.track(PERSON_BYTES);
                        }
                        if (best == null || best.after(day, code, r, ids)) {
                            found.put(q, new Via(day, code, r));
                        }
                    }
                }
                long[] next = found.keySet().toArray();
                for (long q : next) {
                    Via v = found.get(q);
                    walk.graph.track(MEMBER_BYTES);
                    out.add(new Member(level, walk.personId(q), v.day, v.code,
                            ids.nodeElementId(v.registration)));
                    seen.add(q);
                }
                frontier = next;
            }
            // In page order (depth, person_id), from after the cursor on (as Cypher's
            // `depth > $after_depth OR (depth = $after_depth AND person_id > $after_person)`),
            // built while what the walk holds is still counted.
            out.sort((a, b) -> a.depth() != b.depth()
                    ? Long.compare(a.depth(), b.depth())
                    : compare(a.personId(), b.personId()));
            for (Member m : out) {
                if (m.depth() < afterDepth || (m.depth() == afterDepth
                        && (m.personId() == null || compare(m.personId(), afterPerson) <= 0))) {
                    continue;
                }
                page.depths.add(m.depth());
                page.person_ids.add(m.personId());
                page.days.add(m.day());
                page.tube_codes.add(m.tubeCode());
                page.registrations.add(m.registration());
            }
        }
        return page;
    }

    @SuppressWarnings("removal") // Node.getId(): deprecated in 5, still there; see above
    private static long idOf(Node node) {
        return node.getId();
    }

    /** The cursors of one call, the property keys it reads and the window. */
    private static final class Walk implements AutoCloseable {
        final Cursors graph;
        final int personId;
        final String since;
        final String until;
        private final Cursors.Keys tubeKeys;
        private final Cursors.Keys registrationKeys;
        private final Value[] tubeValues = new Value[2];
        private final Value[] registrationValues = new Value[2];

        Walk(KernelTransaction ktx, String since, String until) {
            this.graph = new Cursors(ktx);
            this.personId = graph.key("person_id");
            this.tubeKeys = graph.keys("pool_day", "code");
            this.registrationKeys = graph.keys("pool_size", "day");
            this.since = since;
            this.until = until;
        }

        long[] neighbours(long nodeId, RelationshipSelection selection) {
            return graph.neighbours(nodeId, selection);
        }

        long neighbour(long nodeId, RelationshipSelection selection) {
            return graph.neighbour(nodeId, selection);
        }

        /** A tube's (pool_day, code), read in one pass; the array is reused by the next call. */
        Value[] tube(long tube) {
            graph.properties(tube, tubeKeys, tubeValues);
            return tubeValues;
        }

        String personId(long person) {
            return text(graph.property(person, personId));
        }

        boolean within(String value) {
            return Cursors.within(value, since, until);
        }

        /** The day of a registration with pool_size > 1 and a day inside the window; null for
         * any other registration. */
        String pooledInside(long registration) {
            graph.properties(registration, registrationKeys, registrationValues);
            String day = text(registrationValues[1]);
            return Cursors.pooled(registrationValues[0]) && within(day) ? day : null;
        }

        @Override
        public void close() {
            graph.close();
        }
    }

    private static String text(Value value) {
        return Cursors.text(value);
    }

    /** The link that put a person in their ring: ordered as Cypher orders the list
     * [day, tube code, elementId(registration)]; the element ids are built only on a tie. */
    private static final class Via {
        final String day;
        final String code;
        final long registration;

        Via(String day, String code, long registration) {
            this.day = day;
            this.code = code;
            this.registration = registration;
        }

        boolean after(
                String otherDay, String otherCode, long otherRegistration, ElementIdMapper ids) {
            int c = compare(day, otherDay);
            if (c == 0) {
                c = compare(code, otherCode);
            }
            if (c == 0 && registration != otherRegistration) {
                c = compare(ids.nodeElementId(registration), ids.nodeElementId(otherRegistration));
            }
            return c > 0;
        }
    }

    private static int compare(String a, String b) {
        return Cursors.compare(a, b);
    }
}
