package tubetrace;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
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
@SuppressWarnings("removal") // Node.getId(), deprecated in 5 and still there: see exposure()
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

        Member(long depth, Node person, String day, String tubeCode, String registration) {
            this.depth = depth;
            this.person = person;
            this.day = day;
            this.tube_code = tubeCode;
            this.registration = registration;
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
        // Node ids, not element ids: a long set, no string built per node. Each id is read
        // inside this one transaction, so a deleted node's id cannot be taken again meanwhile.
        Set<Long> usedTubes = new HashSet<>();
        Set<Long> seen = new HashSet<>();
        seen.add(person.getId());
        List<Node> frontier = List.of(person);
        for (long level = 1; level <= depth && !frontier.isEmpty(); level++) {
            // The level's tubes: pooled, inside the window, not expanded before.
            Map<Long, Node> tubes = new LinkedHashMap<>();
            for (Node f : frontier) {
                for (Relationship of : f.getRelationships(Direction.INCOMING, OF_PERSON)) {
                    Node r = of.getStartNode();
                    for (Relationship into : r.getRelationships(Direction.OUTGOING, INTO_TUBE)) {
                        Node t = into.getEndNode();
                        long tid = t.getId();
                        if (usedTubes.contains(tid) || tubes.containsKey(tid)) {
                            continue;
                        }
                        Object poolDay = t.getProperty("pool_day", null);
                        // A pool_day that is not text compares with no day (as in Cypher).
                        boolean inside =
                                poolDay == null
                                        ? pooledInside(r, since, until)
                                        : within(text(poolDay), since, until);
                        if (inside) {
                            tubes.put(tid, t);
                        }
                    }
                }
            }
            usedTubes.addAll(tubes.keySet());
            // Their persons not seen before, each with its least (day, tube, registration).
            Map<Long, Via> found = new HashMap<>();
            for (Node t : tubes.values()) {
                String poolDay = text(t.getProperty("pool_day", null));
                String code = text(t.getProperty("code", null));
                for (Relationship into : t.getRelationships(Direction.INCOMING, INTO_TUBE)) {
                    Node r = into.getStartNode();
                    String day = poolDay;
                    if (day == null) {
                        if (!pooledInside(r, since, until)) {
                            continue;
                        }
                        day = text(r.getProperty("day", null));
                    }
                    for (Relationship of : r.getRelationships(Direction.OUTGOING, OF_PERSON)) {
                        Node q = of.getEndNode();
                        long qid = q.getId();
                        if (seen.contains(qid)) {
                            continue;
                        }
                        Via best = found.get(qid);
                        if (best == null || best.after(day, code, r)) {
                            found.put(qid, new Via(q, day, code, r));
                        }
                    }
                }
            }
            List<Node> next = new ArrayList<>(found.size());
            for (Via v : found.values()) {
                out.add(new Member(level, v.person, v.day, v.code, v.registration.getElementId()));
                next.add(v.person);
            }
            seen.addAll(found.keySet());
            frontier = next;
        }
        return out.stream();
    }

    /** The link that put a person in their ring: ordered as Cypher orders the list
     * [day, tube code, elementId(registration)]; the element id is built only on a tie. */
    private static final class Via {
        final Node person;
        final String day;
        final String code;
        final Node registration;

        Via(Node person, String day, String code, Node registration) {
            this.person = person;
            this.day = day;
            this.code = code;
            this.registration = registration;
        }

        boolean after(String otherDay, String otherCode, Node otherRegistration) {
            int c = compare(day, otherDay);
            if (c == 0) {
                c = compare(code, otherCode);
            }
            if (c == 0) {
                c = compare(registration.getElementId(), otherRegistration.getElementId());
            }
            return c > 0;
        }
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
                && n.doubleValue() > 1
                && within(text(r.getProperty("day", null)), since, until);
    }

    /** Cypher's order of text: a null after any text. */
    private static int compare(String a, String b) {
        if (a == null) {
            return b == null ? 0 : 1;
        }
        return b == null ? -1 : a.compareTo(b);
    }
}
