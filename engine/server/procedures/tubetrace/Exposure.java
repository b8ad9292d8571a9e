package tubetrace;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import org.neo4j.graphdb.Direction;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.Relationship;
import org.neo4j.graphdb.RelationshipType;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;

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
 * <p>Graph: (Registration)-[:OF_PERSON]->(Person), (Registration)-[:INTO_TUBE]->(Tube).
 * Read only; it holds nothing beyond the sets of one call.
 */
public class Exposure {
    private static final RelationshipType OF_PERSON = RelationshipType.withName("OF_PERSON");
    private static final RelationshipType INTO_TUBE = RelationshipType.withName("INTO_TUBE");

    /** One ring member: its depth, the person and the (day, tube, registration) of its link. */
    public static class Member {
        public long depth;
        public Node person;
        public String day;
        public String tube_code;
        public String registration;

        Member(long depth, Node person, String[] via) {
            this.depth = depth;
            this.person = person;
            this.day = via[0];
            this.tube_code = via[1];
            this.registration = via[2];
        }
    }

    @Procedure(name = "tubetrace.exposure", mode = Mode.READ)
    @Description(
            "tubetrace.exposure(person, since, until, depth): the persons at co-pool distance"
                    + " 1..depth from person inside [since, until] (days as YYYY-MM-DD), each with"
                    + " the earliest (day, tube_code, registration) that put them in their ring.")
    public Stream<Member> exposure(
            @Name("person") Node person,
            @Name("since") String since,
            @Name("until") String until,
            @Name("depth") long depth) {
        List<Member> out = new ArrayList<>();
        if (person == null || since == null || until == null) {
            return out.stream();
        }
        Set<String> usedTubes = new HashSet<>();
        Set<String> seen = new HashSet<>();
        seen.add(person.getElementId());
        List<Node> frontier = List.of(person);
        for (long level = 1; level <= depth && !frontier.isEmpty(); level++) {
            // The level's tubes: pooled, inside the window, not expanded before.
            Map<String, Node> tubes = new HashMap<>();
            Set<String> order = new LinkedHashSet<>();
            for (Node f : frontier) {
                for (Relationship of : f.getRelationships(Direction.INCOMING, OF_PERSON)) {
                    Node r = of.getStartNode();
                    for (Relationship into : r.getRelationships(Direction.OUTGOING, INTO_TUBE)) {
                        Node t = into.getEndNode();
                        String tid = t.getElementId();
                        if (usedTubes.contains(tid) || tubes.containsKey(tid)) {
                            continue;
                        }
                        String poolDay = text(t.getProperty("pool_day", null));
                        boolean inside =
                                poolDay == null
                                        ? pooledInside(r, since, until)
                                        : within(poolDay, since, until);
                        if (inside) {
                            tubes.put(tid, t);
                            order.add(tid);
                        }
                    }
                }
            }
            usedTubes.addAll(order);
            // Their persons not seen before, each with its least (day, tube, registration).
            Map<String, String[]> via = new HashMap<>();
            Map<String, Node> found = new HashMap<>();
            for (String tid : order) {
                Node t = tubes.get(tid);
                String poolDay = text(t.getProperty("pool_day", null));
                String code = text(t.getProperty("code", null));
                for (Relationship into : t.getRelationships(Direction.INCOMING, INTO_TUBE)) {
                    Node r = into.getStartNode();
                    if (poolDay == null && !pooledInside(r, since, until)) {
                        continue;
                    }
                    for (Relationship of : r.getRelationships(Direction.OUTGOING, OF_PERSON)) {
                        Node q = of.getEndNode();
                        String qid = q.getElementId();
                        if (seen.contains(qid)) {
                            continue;
                        }
                        String[] candidate = {
                            poolDay != null ? poolDay : text(r.getProperty("day", null)),
                            code,
                            r.getElementId()
                        };
                        String[] best = via.get(qid);
                        if (best == null || less(candidate, best)) {
                            via.put(qid, candidate);
                            found.put(qid, q);
                        }
                    }
                }
            }
            List<Node> next = new ArrayList<>(found.size());
            for (Map.Entry<String, Node> e : found.entrySet()) {
                out.add(new Member(level, e.getValue(), via.get(e.getKey())));
                next.add(e.getValue());
            }
            seen.addAll(found.keySet());
            frontier = next;
        }
        return out.stream();
    }

    private static String text(Object value) {
        return value instanceof String s ? s : null;
    }

    private static boolean within(String day, String since, String until) {
        return day != null && day.compareTo(since) >= 0 && day.compareTo(until) <= 0;
    }

    private static boolean pooledInside(Node r, String since, String until) {
        Object size = r.getProperty("pool_size", null);
        return size instanceof Number n
                && n.longValue() > 1
                && within(text(r.getProperty("day", null)), since, until);
    }

    /** Cypher's order of lists of text: element by element, a null after any text. */
    private static boolean less(String[] a, String[] b) {
        for (int i = 0; i < a.length; i++) {
            int c = compare(a[i], b[i]);
            if (c != 0) {
                return c < 0;
            }
        }
        return false;
    }

    private static int compare(String a, String b) {
        if (a == null) {
            return b == null ? 0 : 1;
        }
        return b == null ? -1 : a.compareTo(b);
    }
}
