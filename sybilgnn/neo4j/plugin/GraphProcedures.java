package sybilgnn.neo4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.neo4j.graphdb.Direction;
import org.neo4j.graphdb.Transaction;
import org.neo4j.internal.kernel.api.NodeCursor;
import org.neo4j.internal.kernel.api.Read;
import org.neo4j.internal.kernel.api.RelationshipTraversalCursor;
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

/**
 * Neighbourhoods for incremental scoring.
 *
 * <p>An incremental run needs every node within a few hops of what a delivery changed. In
 * Cypher that is one query per hop with the whole frontier as a parameter, which the slotted
 * runtime interprets row by row (tens of thousands of rows per hop through shared IPs). This
 * walks the relationship chains through the kernel's cursors in the caller's transaction,
 * so it sees exactly what a Cypher read in that transaction would.
 */
public class GraphProcedures {

    @Context
    public Transaction tx;

    public static class Reached {
        /** Position of the node's label in the call's ``labels``. */
        public long index;
        /** Internal ids of the nodes reached with that label (int64 LE), starts included. */
        public byte[] ids;
    }

    @Procedure(name = "sybilgnn.graph.expand", mode = Mode.READ)
    @Description("Every node within hops relationships (of the given types, either direction) "
            + "of the start nodes packed in ids, that carries one of labels; one row per label.")
    public Stream<Reached> expand(@Name("ids") byte[] packedIds,
                                  @Name("types") List<String> types,
                                  @Name("labels") List<String> labels,
                                  @Name("hops") long hops) {
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        TokenRead tokens = ktx.tokenRead();
        int[] labelTokens = labels.stream().mapToInt(tokens::nodeLabel).toArray();
        int[] typeTokens = types.stream().mapToInt(tokens::relationshipType)
                .filter(t -> t != TokenConstants.NO_TOKEN).toArray();
        Map<Long, Integer> reached = new HashMap<>();  // node -> label position, -1 none
        Read read = ktx.dataRead();
        try (NodeCursor nodes = ktx.cursors().allocateNodeCursor(ktx.cursorContext(), ktx.memoryTracker());
             NodeCursor ends = ktx.cursors().allocateNodeCursor(ktx.cursorContext(), ktx.memoryTracker());
             RelationshipTraversalCursor rels = ktx.cursors().allocateRelationshipTraversalCursor(ktx.cursorContext(), ktx.memoryTracker())) {
            List<Long> frontier = new ArrayList<>();
            for (long id : unpackLongs(packedIds)) {
                int index = labelOf(read, nodes, id, labelTokens);
                if (index >= 0 && reached.putIfAbsent(id, index) == null) {
                    frontier.add(id);
                }
            }
            RelationshipSelection both = RelationshipSelection.selection(typeTokens, Direction.BOTH);
            for (long hop = 0; hop < hops && !frontier.isEmpty() && typeTokens.length > 0; hop++) {
                List<Long> next = new ArrayList<>();
                for (long id : frontier) {
                    read.singleNode(id, nodes);
                    if (!nodes.next()) {
                        continue;
                    }
                    nodes.relationships(rels, both);
                    while (rels.next()) {
                        long other = rels.otherNodeReference();
                        if (reached.containsKey(other)) {
                            continue;
                        }
                        int index = labelOf(read, ends, other, labelTokens);
                        reached.put(other, index);
                        if (index >= 0) {
                            next.add(other);
                        }
                    }
                }
                frontier = next;
            }
        }
        return rows(reached, labels.size());
    }

    /** Position of the first of ``labelTokens`` the node carries; -1 when none or gone. */
    private static int labelOf(Read read, NodeCursor nodes, long id, int[] labelTokens) {
        read.singleNode(id, nodes);
        if (!nodes.next()) {
            return -1;
        }
        for (int i = 0; i < labelTokens.length; i++) {
            if (labelTokens[i] != TokenConstants.NO_TOKEN && nodes.hasLabel(labelTokens[i])) {
                return i;
            }
        }
        return -1;
    }

    private static Stream<Reached> rows(Map<Long, Integer> reached, int nLabels) {
        long[][] ids = new long[nLabels][];
        int[] counts = new int[nLabels];
        for (int index : reached.values()) {
            if (index >= 0) {
                counts[index]++;
            }
        }
        for (int i = 0; i < nLabels; i++) {
            ids[i] = new long[counts[i]];
            counts[i] = 0;
        }
        for (Map.Entry<Long, Integer> entry : reached.entrySet()) {
            int index = entry.getValue();
            if (index >= 0) {
                ids[index][counts[index]++] = entry.getKey();
            }
        }
        List<Reached> out = new ArrayList<>();
        for (int i = 0; i < nLabels; i++) {
            Reached row = new Reached();
            row.index = i;
            ByteBuffer buffer = ByteBuffer.allocate(ids[i].length * 8).order(ByteOrder.LITTLE_ENDIAN);
            buffer.asLongBuffer().put(ids[i]);
            row.ids = buffer.array();
            out.add(row);
        }
        return out.stream();
    }

    private static long[] unpackLongs(byte[] packed) {
        ByteBuffer buffer = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
        long[] out = new long[packed.length / 8];
        buffer.asLongBuffer().get(out);
        return out;
    }
}
