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
 * <p>Graph: (Registration)-[:OF_PERSON]->(Person), (Registration)-[:INTO_TUBE]->(Tube).
 * Read only; it holds nothing beyond the sets of one call. It reads through the kernel's
 * cursors (one of each kind, reused for every node), where the public Node API allocated
 * a cursor per call and an entity per node reached: half the time of the same walk
 * (Cursors).
 */
public class Exposure {
    @Context public Transaction tx;

    /** One ring member: its depth, the person and the (day, tube, registration) of its link. */
    public static class Member {
        public long depth;
        public Node person;
        public String person_id;
        public String day;
        public String tube_code;
        public String registration;

        Member(
                long depth,
                Node person,
                String personId,
                String day,
                String tubeCode,
                String registration) {
            this.depth = depth;
            this.person = person;
            this.person_id = personId;
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
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        TokenRead tokens = ktx.tokenRead();
        int ofPerson = tokens.relationshipType("OF_PERSON");
        int intoTube = tokens.relationshipType("INTO_TUBE");
        if (ofPerson == TokenConstants.NO_TOKEN || intoTube == TokenConstants.NO_TOKEN) {
            return out.stream();
        }
        try (Walk walk = new Walk(ktx, since, until)) {
            RelationshipSelection personRegistrations =
                    RelationshipSelection.selection(ofPerson, Direction.INCOMING);
            RelationshipSelection registrationTube =
                    RelationshipSelection.selection(intoTube, Direction.OUTGOING);
            RelationshipSelection tubeRegistrations =
                    RelationshipSelection.selection(intoTube, Direction.INCOMING);
            RelationshipSelection registrationPerson =
                    RelationshipSelection.selection(ofPerson, Direction.OUTGOING);
            // Node ids: a long set, no string built per node. Each id is read inside this one
            // transaction, so a deleted node's id cannot be taken again meanwhile.
            Set<Long> usedTubes = new HashSet<>();
            Set<Long> seen = new HashSet<>();
            seen.add(idOf(person));
            List<Long> frontier = List.of(idOf(person));
            for (long level = 1; level <= depth && !frontier.isEmpty(); level++) {
                // The level's tubes: pooled, inside the window, not expanded before; with
                // each its (pool_day, code).
                Map<Long, String[]> tubes = new LinkedHashMap<>();
                for (long f : frontier) {
                    for (long r : walk.neighbours(f, personRegistrations)) {
                        Boolean pooledInside = null; // read once, only where needed
                        for (long t : walk.neighbours(r, registrationTube)) {
                            if (usedTubes.contains(t) || tubes.containsKey(t)) {
                                continue;
                            }
                            Value poolDay = walk.property(t, walk.poolDay);
                            boolean inside;
                            if (poolDay == null) {
                                if (pooledInside == null) {
                                    pooledInside = walk.pooledInside(r);
                                }
                                inside = pooledInside;
                            } else {
                                // A pool_day that is not text compares with no day (as in Cypher).
                                inside = walk.within(text(poolDay));
                            }
                            if (inside) {
                                tubes.put(t, new String[] {
                                    text(poolDay), text(walk.property(t, walk.code))
                                });
                            }
                        }
                    }
                }
                usedTubes.addAll(tubes.keySet());
                // Their persons not seen before, each with its least (day, tube, registration).
                Map<Long, Via> found = new HashMap<>();
                for (Map.Entry<Long, String[]> tube : tubes.entrySet()) {
                    String poolDay = tube.getValue()[0];
                    String code = tube.getValue()[1];
                    for (long r : walk.neighbours(tube.getKey(), tubeRegistrations)) {
                        String day = poolDay;
                        if (day == null) {
                            if (!walk.pooledInside(r)) {
                                continue;
                            }
                            day = text(walk.property(r, walk.day));
                        }
                        for (long q : walk.neighbours(r, registrationPerson)) {
                            if (seen.contains(q)) {
                                continue;
                            }
                            Via best = found.get(q);
                            if (best == null || best.after(day, code, r, tx)) {
                                found.put(q, new Via(day, code, r));
                            }
                        }
                    }
                }
                List<Long> next = new ArrayList<>(found.size());
                for (Map.Entry<Long, Via> e : found.entrySet()) {
                    Via v = e.getValue();
                    out.add(new Member(level, nodeOf(tx, e.getKey()),
                            text(walk.property(e.getKey(), walk.personId)), v.day, v.code,
                            nodeOf(tx, v.registration).getElementId()));
                    next.add(e.getKey());
                }
                seen.addAll(found.keySet());
                frontier = next;
            }
        }
        // In page order (depth, person_id): the caller's ORDER BY then finds it sorted.
        out.sort((a, b) -> a.depth != b.depth
                ? Long.compare(a.depth, b.depth)
                : compare(a.person_id, b.person_id));
        return out.stream();
    }

    @SuppressWarnings("removal") // Node.getId(): deprecated in 5, still there; see above
    private static long idOf(Node node) {
        return node.getId();
    }

    @SuppressWarnings("removal")
    private static Node nodeOf(Transaction tx, long id) {
        return tx.getNodeById(id);
    }

    /** The cursors of one call, the property keys it reads and the window. */
    private static final class Walk implements AutoCloseable {
        final Cursors graph;
        final int day;
        final int poolSize;
        final int poolDay;
        final int code;
        final int personId;
        final String since;
        final String until;

        Walk(KernelTransaction ktx, String since, String until) {
            this.graph = new Cursors(ktx);
            this.day = graph.key("day");
            this.poolSize = graph.key("pool_size");
            this.poolDay = graph.key("pool_day");
            this.code = graph.key("code");
            this.personId = graph.key("person_id");
            this.since = since;
            this.until = until;
        }

        long[] neighbours(long nodeId, RelationshipSelection selection) {
            return graph.neighbours(nodeId, selection);
        }

        Value property(long nodeId, int key) {
            return graph.property(nodeId, key);
        }

        boolean within(String value) {
            return Cursors.within(value, since, until);
        }

        /** A registration with pool_size > 1 and a day inside the window. */
        boolean pooledInside(long registration) {
            return Cursors.pooled(property(registration, poolSize))
                    && within(text(property(registration, day)));
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

        boolean after(String otherDay, String otherCode, long otherRegistration, Transaction tx) {
            int c = compare(day, otherDay);
            if (c == 0) {
                c = compare(code, otherCode);
            }
            if (c == 0 && registration != otherRegistration) {
                c = compare(
                        nodeOf(tx, registration).getElementId(),
                        nodeOf(tx, otherRegistration).getElementId());
            }
            return c > 0;
        }
    }

    private static int compare(String a, String b) {
        return Cursors.compare(a, b);
    }
}
