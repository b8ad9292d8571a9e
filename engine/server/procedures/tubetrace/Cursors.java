package tubetrace;

import java.util.Arrays;

import org.neo4j.internal.kernel.api.CursorFactory;
import org.neo4j.internal.kernel.api.NodeCursor;
import org.neo4j.internal.kernel.api.PropertyCursor;
import org.neo4j.internal.kernel.api.Read;
import org.neo4j.internal.kernel.api.RelationshipTraversalCursor;
import org.neo4j.internal.kernel.api.TokenRead;
import org.neo4j.io.pagecache.context.CursorContext;
import org.neo4j.kernel.api.KernelTransaction;
import org.neo4j.memory.MemoryTracker;
import org.neo4j.storageengine.api.PropertySelection;
import org.neo4j.storageengine.api.RelationshipSelection;
import org.neo4j.token.api.TokenConstants;
import org.neo4j.values.storable.NumberValue;
import org.neo4j.values.storable.TextValue;
import org.neo4j.values.storable.Value;

/**
 * The kernel cursors of one procedure call: one of each kind, reused for every node read.
 * The public Node API allocates a cursor per call and an entity per node reached: twice the
 * time of the same walk (docs/analysis.md, "Exposure in the server").
 *
 * <p>What the call holds on the heap is counted with the transaction's memory tracker
 * (`track`): a call that would pass `db.memory.transaction.max` or the server's pool for all
 * transactions fails with Neo4j's memory error, instead of filling the heap of a server others
 * use. Released when the call ends (`close`).
 */
final class Cursors implements AutoCloseable {
    final KernelTransaction ktx;
    final TokenRead tokens;
    private final Read read;
    private final NodeCursor node;
    private final RelationshipTraversalCursor rels;
    private final PropertyCursor props;
    private final MemoryTracker memory;
    private long tracked;

    Cursors(KernelTransaction ktx) {
        CursorFactory cursors = ktx.cursors();
        CursorContext context = ktx.cursorContext();
        MemoryTracker memory = ktx.memoryTracker();
        this.ktx = ktx;
        this.tokens = ktx.tokenRead();
        this.read = ktx.dataRead();
        this.node = cursors.allocateNodeCursor(context, memory);
        this.rels = cursors.allocateRelationshipTraversalCursor(context, memory);
        this.props = cursors.allocatePropertyCursor(context, memory);
        this.memory = memory;
    }

    /** `bytes` more held by this call, counted against the transaction's memory limits
     * (MemoryLimitExceededException past them). */
    void track(long bytes) {
        memory.allocateHeap(bytes);
        tracked += bytes;
    }

    /** A property key's token (NO_TOKEN when no node ever had it). */
    int key(String name) {
        return tokens.propertyKey(name);
    }

    /** The nodes at the other end of a node's relationships of one type and direction. */
    long[] neighbours(long nodeId, RelationshipSelection selection) {
        read.singleNode(nodeId, node);
        if (!node.next()) {
            return new long[0];
        }
        node.relationships(rels, selection);
        long[] found = new long[4];
        int n = 0;
        while (rels.next()) {
            if (n == found.length) {
                found = Arrays.copyOf(found, n * 2);
            }
            found[n++] = rels.otherNodeReference();
        }
        return n == found.length ? found : Arrays.copyOf(found, n);
    }

    /** The node at the other end of a node's first relationship of one type and direction,
     * or -1: for a relationship a node has one of (a registration's tube and person). */
    long neighbour(long nodeId, RelationshipSelection selection) {
        read.singleNode(nodeId, node);
        if (!node.next()) {
            return -1;
        }
        node.relationships(rels, selection);
        return rels.next() ? rels.otherNodeReference() : -1;
    }

    /** Property keys read together (`properties`): their tokens and the selection of those
     * that exist. */
    static final class Keys {
        final int[] tokens;
        final PropertySelection selection;

        Keys(int[] tokens) {
            this.tokens = tokens;
            int[] known = Arrays.stream(tokens).filter(k -> k != TokenConstants.NO_TOKEN).toArray();
            this.selection = known.length == 0 ? null : PropertySelection.selection(known);
        }
    }

    /** The tokens of some property keys, to read together. */
    Keys keys(String... names) {
        return new Keys(Arrays.stream(names).mapToInt(this::key).toArray());
    }

    /** Some properties of a node in one pass over its property records: `into[i]` the value
     * of the i-th key, null when it has none. */
    void properties(long nodeId, Keys keys, Value[] into) {
        Arrays.fill(into, null);
        if (keys.selection == null) {
            return;
        }
        read.singleNode(nodeId, node);
        if (!node.next()) {
            return;
        }
        node.properties(props, keys.selection);
        while (props.next()) {
            int k = props.propertyKey();
            for (int i = 0; i < keys.tokens.length; i++) {
                if (keys.tokens[i] == k) {
                    into[i] = props.propertyValue();
                }
            }
        }
    }

    /** A node's property, or null when it has none (or the key was never used). */
    Value property(long nodeId, int key) {
        if (key == TokenConstants.NO_TOKEN) {
            return null;
        }
        read.singleNode(nodeId, node);
        if (!node.next()) {
            return null;
        }
        node.properties(props, PropertySelection.selection(key));
        return props.next() ? props.propertyValue() : null;
    }

    /** A text property, or null (none, or not text). */
    String text(long nodeId, int key) {
        return text(property(nodeId, key));
    }

    static String text(Value value) {
        return value instanceof TextValue t ? t.stringValue() : null;
    }

    /** A day (text, YYYY-MM-DD) inside [since, until]; a null or a day that is not text is not. */
    static boolean within(String day, String since, String until) {
        return day != null && day.compareTo(since) >= 0 && day.compareTo(until) <= 0;
    }

    /** `pool_size > 1` as Cypher tells it: a number above 1 (null or text: no). */
    static boolean pooled(Value poolSize) {
        return poolSize instanceof NumberValue n && n.doubleValue() > 1;
    }

    /** Cypher's order of text: a null after any text. */
    static int compare(String a, String b) {
        if (a == null) {
            return b == null ? 0 : 1;
        }
        return b == null ? -1 : a.compareTo(b);
    }

    @Override
    public void close() {
        memory.releaseHeap(tracked);
        tracked = 0;
        node.close();
        rels.close();
        props.close();
    }
}
