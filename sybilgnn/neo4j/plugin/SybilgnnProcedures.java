package sybilgnn.neo4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.neo4j.graphdb.Direction;
import org.neo4j.graphdb.Label;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.NotFoundException;
import org.neo4j.graphdb.Transaction;
import org.neo4j.internal.kernel.api.NodeCursor;
import org.neo4j.internal.kernel.api.PropertyCursor;
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
import org.neo4j.storageengine.api.PropertySelection;
import org.neo4j.storageengine.api.RelationshipSelection;
import org.neo4j.token.api.TokenConstants;
import org.neo4j.values.storable.NumberValue;
import org.neo4j.values.storable.TextValue;
import org.neo4j.values.storable.Value;

/**
 * Server-side halves of sybilgnn's export and score write-back.
 *
 * <p>Cypher's slotted runtime (Community Edition) interprets a query row by row, so the
 * columnar Cypher reads spend most of their time in the interpreter, not in the store.
 * These procedures walk the store through the embedded API instead and hand back a chunk
 * as packed little-endian arrays (one Bolt byte array per column), which the Python client
 * turns into numpy arrays without touching a value. They are optional: the client falls
 * back to Cypher when the server does not have them (a remote server, no JDK at install).
 *
 * <p>Every procedure works on the caller's transaction, so it sees exactly what a Cypher
 * query in that transaction would see. The export reads go through the kernel's cursors
 * (the layer Cypher itself reads through: no entity objects, no property maps, no boxing of
 * numbers); the write uses the public embedded API.
 */
public class SybilgnnProcedures {

    /** Bump when a signature or an output changes; the client checks it. */
    public static final long API_VERSION = 5;

    @Context
    public Transaction tx;

    // ---- helpers ---------------------------------------------------------------------

    private static long[] unpackLongs(byte[] packed) {
        ByteBuffer buffer = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
        long[] out = new long[packed.length / 8];
        buffer.asLongBuffer().get(out);
        return out;
    }

    private static double[] unpackDoubles(byte[] packed) {
        ByteBuffer buffer = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
        double[] out = new double[packed.length / 8];
        buffer.asDoubleBuffer().get(out);
        return out;
    }

    private static byte[] packLongs(long[] values, int n) {
        ByteBuffer buffer = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
        buffer.asLongBuffer().put(values, 0, n);
        return buffer.array();
    }


    /** A numeric property as a double (NaN when absent); null when it cannot be one. */
    private static Double asNumber(Object value) {
        if (value == null) {
            return Double.NaN;
        }
        if (value instanceof Number number) {
            return number.doubleValue();
        }
        if (value instanceof Boolean flag) {
            return flag ? 1.0 : 0.0;
        }
        if (value instanceof String text) {
            try {
                return Double.parseDouble(text.trim());
            } catch (NumberFormatException e) {
                return null;
            }
        }
        return null;
    }

    /** A temporal property as epoch seconds (NaN when absent); null when it is no time. */
    private static Double asEpochSeconds(Object value) {
        if (value == null) {
            return Double.NaN;
        }
        long millis;
        if (value instanceof ZonedDateTime time) {
            millis = time.toInstant().toEpochMilli();
        } else if (value instanceof OffsetDateTime time) {
            millis = time.toInstant().toEpochMilli();
        } else if (value instanceof LocalDateTime time) {
            millis = time.toInstant(ZoneOffset.UTC).toEpochMilli();
        } else if (value instanceof LocalDate date) {
            millis = date.atStartOfDay().toInstant(ZoneOffset.UTC).toEpochMilli();
        } else {
            return null;
        }
        return millis / 1000.0;
    }

    /** A property as text the way Cypher's toString() gives it; null when it has none. */
    private static String asText(Object value, String missing) {
        if (value == null) {
            return missing;
        }
        if (value instanceof String || value instanceof Number || value instanceof Boolean) {
            return String.valueOf(value);
        }
        return null;
    }

    private static String describe(Object value) {
        if (value != null && value.getClass().isArray()) {
            return "a list";
        }
        return String.valueOf(value);
    }

    // ---- version ---------------------------------------------------------------------

    public static class VersionRow {
        public long version;

        public VersionRow(long version) {
            this.version = version;
        }
    }

    @Procedure(name = "sybilgnn.version", mode = Mode.READ)
    @Description("The API version of the sybilgnn procedures installed on this server.")
    public Stream<VersionRow> version() {
        return Stream.of(new VersionRow(API_VERSION));
    }

    // ---- node columns ----------------------------------------------------------------

    public static class NodeChunk {
        /** Internal ids of the nodes found (int64 LE); deleted or relabelled ones are left out. */
        public byte[] ids;
        /** Keys as UTF-8, each followed by a NUL byte (one array decodes far faster than a list). */
        public byte[] keys;
        /** Numeric columns one after another, float64 LE, NaN where absent. */
        public byte[] numeric;
        /** String columns one after another, encoded as ``keys``. */
        public byte[] strings;
        /** Time columns one after another, epoch seconds as float64 LE, NaN where absent. */
        public byte[] times;
        /** "property\tvalue" of the first value that has the wrong type, else null. */
        public String bad;
    }

    @Procedure(name = "sybilgnn.export.nodes", mode = Mode.READ)
    @Description("Key and property columns of the nodes whose internal ids are packed in ids.")
    public Stream<NodeChunk> exportNodes(@Name("ids") byte[] packedIds, @Name("label") String label,
                                         @Name("key") String key,
                                         @Name("numeric") List<String> numeric,
                                         @Name("strings") List<String> strings,
                                         @Name("times") List<String> times,
                                         @Name("missing") String missing) {
        long[] wanted = unpackLongs(packedIds);
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        TokenRead tokens = ktx.tokenRead();
        int labelId = tokens.nodeLabel(label);
        // property token -> the columns it fills, as {group, column}
        List<List<String>> groups = List.of(List.of(key), numeric, strings, times);
        Map<Integer, List<int[]>> byToken = new HashMap<>();
        for (int g = 0; g < groups.size(); g++) {
            for (int c = 0; c < groups.get(g).size(); c++) {
                int token = tokens.propertyKey(groups.get(g).get(c));
                if (token != TokenConstants.NO_TOKEN) {
                    byToken.computeIfAbsent(token, t -> new ArrayList<>()).add(new int[] {g, c});
                }
            }
        }
        int[] selected = byToken.keySet().stream().mapToInt(Integer::intValue).toArray();
        int maxToken = java.util.Arrays.stream(selected).max().orElse(-1);
        int[][][] slots = new int[maxToken + 1][][];  // token -> {group, column} pairs
        for (Map.Entry<Integer, List<int[]>> entry : byToken.entrySet()) {
            slots[entry.getKey()] = entry.getValue().toArray(new int[0][]);
        }
        PropertySelection selection = PropertySelection.selection(selected);
        NodeColumnsBuilder out = new NodeColumnsBuilder(wanted.length, numeric, strings, times,
                                                        missing);
        if (labelId != TokenConstants.NO_TOKEN) {
            Read read = ktx.dataRead();
            try (NodeCursor nodes = ktx.cursors().allocateNodeCursor(ktx.cursorContext(), ktx.memoryTracker());
                 PropertyCursor props = ktx.cursors().allocatePropertyCursor(ktx.cursorContext(), ktx.memoryTracker())) {
                for (long id : wanted) {
                    read.singleNode(id, nodes);
                    if (!nodes.next() || !nodes.hasLabel(labelId)) {
                        continue;  // deleted or relabelled since the node set was fixed
                    }
                    int row = out.addRow(id);
                    if (selected.length == 0) {
                        continue;
                    }
                    nodes.properties(props, selection);
                    while (props.next()) {
                        Value value = props.propertyValue();
                        for (int[] slot : slots[props.propertyKey()]) {
                            out.set(slot[0], slot[1], row, value, groups.get(slot[0]).get(slot[1]));
                        }
                    }
                }
            }
        }
        return Stream.of(out.build());
    }

    /** Column buffers of one node chunk; absent values stay NaN or ``missing``. */
    private static final class NodeColumnsBuilder {
        private final long[] found;
        private final String[] keys;
        private final double[][] numbers;
        private final String[][] texts;
        private final double[][] seconds;
        private final String missing;
        private int n;
        private String bad;

        NodeColumnsBuilder(int capacity, List<String> numeric, List<String> strings,
                           List<String> times, String missing) {
            this.found = new long[capacity];
            this.keys = new String[capacity];
            this.numbers = new double[numeric.size()][capacity];
            this.texts = new String[strings.size()][capacity];
            this.seconds = new double[times.size()][capacity];
            this.missing = missing;
            for (double[] column : numbers) {
                java.util.Arrays.fill(column, Double.NaN);
            }
            for (double[] column : seconds) {
                java.util.Arrays.fill(column, Double.NaN);
            }
            java.util.Arrays.fill(keys, missing);
            for (String[] column : texts) {
                java.util.Arrays.fill(column, missing);
            }
        }

        int addRow(long id) {
            found[n] = id;
            return n++;
        }

        void set(int group, int column, int row, Value value, String name) {
            if (group == 1 && value instanceof NumberValue number) {  // the common case, unboxed
                numbers[column][row] = number.doubleValue();
                return;
            }
            Object converted = switch (group) {
                case 0, 2 -> asText(value, missing);
                case 1 -> asNumber(value);
                default -> asEpochSeconds(value.asObjectCopy());
            };
            if (converted instanceof String text && text.indexOf('\0') >= 0) {
                converted = null;  // NUL separates the packed texts
            }
            if (converted == null) {
                if (bad == null) {
                    bad = name + "\t" + describe(value.asObjectCopy());
                }
                return;
            }
            switch (group) {
                case 0 -> keys[row] = (String) converted;
                case 1 -> numbers[column][row] = (Double) converted;
                case 2 -> texts[column][row] = (String) converted;
                default -> seconds[column][row] = (Double) converted;
            }
        }

        NodeChunk build() {
            NodeChunk chunk = new NodeChunk();
            chunk.ids = packLongs(found, n);
            chunk.keys = packTexts(new String[][] {keys}, n);
            chunk.numeric = packColumns(numbers, n);
            chunk.strings = packTexts(texts, n);
            chunk.times = packColumns(seconds, n);
            chunk.bad = bad;
            return chunk;
        }
    }

    /** Columns of ``n`` doubles one after another, float64 LE. */
    private static byte[] packColumns(double[][] columns, int n) {
        ByteBuffer buffer = ByteBuffer.allocate(columns.length * n * 8).order(ByteOrder.LITTLE_ENDIAN);
        for (double[] column : columns) {
            buffer.asDoubleBuffer().put(column, 0, n);
            buffer.position(buffer.position() + n * 8);
        }
        return buffer.array();
    }

    /** Texts column by column, each as UTF-8 followed by a NUL byte. */
    private static byte[] packTexts(String[][] columns, int n) {
        StringBuilder joined = new StringBuilder();
        for (String[] column : columns) {
            for (int i = 0; i < n; i++) {
                joined.append(column[i]).append('\0');
            }
        }
        return joined.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    private static Double asNumber(Value value) {
        if (value instanceof NumberValue number) {
            return number.doubleValue();
        }
        return asNumber(value.asObjectCopy());
    }

    private static String asText(Value value, String missing) {
        if (value instanceof TextValue text) {
            return text.stringValue();
        }
        return asText(value.asObjectCopy(), missing);
    }

    // ---- edge columns ----------------------------------------------------------------

    public static class EdgeChunk {
        /** Position of the relationship type in the call's ``types``. */
        public long index;
        public byte[] src;
        public byte[] dst;
        /** float64 LE, NaN where the weight is absent; empty when no weight was asked for. */
        public byte[] weight;
        public String bad;
    }

    @Procedure(name = "sybilgnn.export.edges", mode = Mode.READ)
    @Description("Outgoing relationships of several types from the source nodes packed in ids, "
            + "read in one walk of each node's relationship chain; one row per type.")
    public Stream<EdgeChunk> exportEdges(@Name("ids") byte[] packedIds,
                                         @Name("sourceLabel") String sourceLabel,
                                         @Name("types") List<String> types,
                                         @Name("targetLabels") List<String> targetLabels,
                                         @Name("weights") List<String> weights) {
        long[] sources = unpackLongs(packedIds);
        KernelTransaction ktx = ((InternalTransaction) tx).kernelTransaction();
        TokenRead tokens = ktx.tokenRead();
        int source = tokens.nodeLabel(sourceLabel);
        int k = types.size();
        EdgeColumnsBuilder[] out = new EdgeColumnsBuilder[k];
        Map<Integer, Integer> slotOfToken = new HashMap<>();
        for (int t = 0; t < k; t++) {
            String targetLabel = targetLabels.get(t);
            int target = targetLabel == null ? TokenConstants.ANY_LABEL : tokens.nodeLabel(targetLabel);
            String weight = weights.get(t);
            out[t] = new EdgeColumnsBuilder(t, Math.max(16, sources.length * 4), target, weight,
                    weight == null ? TokenConstants.NO_TOKEN : tokens.propertyKey(weight));
            int relType = tokens.relationshipType(types.get(t));
            boolean none = relType == TokenConstants.NO_TOKEN
                    || (targetLabel != null && target == TokenConstants.NO_TOKEN);
            if (!none) {
                slotOfToken.put(relType, t);
            }
        }
        if (source != TokenConstants.NO_TOKEN && !slotOfToken.isEmpty()) {
            int[] wanted = slotOfToken.keySet().stream().mapToInt(Integer::intValue).toArray();
            int[] slotOf = new int[java.util.Arrays.stream(wanted).max().getAsInt() + 1];
            for (Map.Entry<Integer, Integer> entry : slotOfToken.entrySet()) {
                slotOf[entry.getKey()] = entry.getValue();
            }
            RelationshipSelection outgoing = RelationshipSelection.selection(wanted, Direction.OUTGOING);
            Read read = ktx.dataRead();
            try (NodeCursor nodes = ktx.cursors().allocateNodeCursor(ktx.cursorContext(), ktx.memoryTracker());
                 NodeCursor ends = ktx.cursors().allocateNodeCursor(ktx.cursorContext(), ktx.memoryTracker());
                 RelationshipTraversalCursor rels = ktx.cursors().allocateRelationshipTraversalCursor(ktx.cursorContext(), ktx.memoryTracker());
                 PropertyCursor props = ktx.cursors().allocatePropertyCursor(ktx.cursorContext(), ktx.memoryTracker())) {
                for (long id : sources) {
                    read.singleNode(id, nodes);
                    if (!nodes.next() || !nodes.hasLabel(source)) {
                        continue;
                    }
                    nodes.relationships(rels, outgoing);
                    while (rels.next()) {
                        EdgeColumnsBuilder columns = out[slotOf[rels.type()]];
                        long end = rels.targetNodeReference();
                        if (columns.target != TokenConstants.ANY_LABEL) {
                            read.singleNode(end, ends);
                            if (!ends.next() || !ends.hasLabel(columns.target)) {
                                continue;
                            }
                        }
                        double value = Double.NaN;
                        if (columns.weightKey != TokenConstants.NO_TOKEN) {
                            rels.properties(props, columns.weightOnly);
                            if (props.next()) {
                                Value raw = props.propertyValue();
                                if (raw instanceof NumberValue number) {
                                    value = number.doubleValue();  // the common case, unboxed
                                } else {
                                    Double number = asNumber(raw);
                                    if (number == null && columns.bad == null) {
                                        columns.bad = columns.weight + "\t"
                                                + describe(raw.asObjectCopy());
                                    }
                                    value = number == null ? Double.NaN : number;
                                }
                            }
                        }
                        columns.add(id, end, value);
                    }
                }
            }
        }
        return java.util.Arrays.stream(out).map(EdgeColumnsBuilder::build);
    }

    /** Growing edge columns of one relationship type in one chunk. */
    private static final class EdgeColumnsBuilder {
        private final int index;
        private final int target;
        private final String weight;
        private final int weightKey;
        private final PropertySelection weightOnly;
        private long[] src;
        private long[] dst;
        private double[] weights;
        private int n;
        private String bad;

        EdgeColumnsBuilder(int index, int capacity, int target, String weight, int weightKey) {
            this.index = index;
            this.target = target;
            this.weight = weight;
            this.weightKey = weightKey;
            this.weightOnly = PropertySelection.selection(weightKey);
            this.src = new long[capacity];
            this.dst = new long[capacity];
            this.weights = new double[weight == null ? 0 : capacity];
        }

        void add(long from, long to, double value) {
            if (n == src.length) {
                src = java.util.Arrays.copyOf(src, n * 2);
                dst = java.util.Arrays.copyOf(dst, n * 2);
                if (weight != null) {
                    weights = java.util.Arrays.copyOf(weights, n * 2);
                }
            }
            src[n] = from;
            dst[n] = to;
            if (weight != null) {
                weights[n] = value;
            }
            n++;
        }

        EdgeChunk build() {
            EdgeChunk chunk = new EdgeChunk();
            chunk.index = index;
            chunk.src = packLongs(src, n);
            chunk.dst = packLongs(dst, n);
            chunk.weight = packColumns(new double[][] {weights}, weight == null ? 0 : n);
            chunk.bad = bad;
            return chunk;
        }
    }

    // ---- score write-back ------------------------------------------------------------

    public static class WriteResult {
        public long written;
        public long missing;

        public WriteResult(long written, long missing) {
            this.written = written;
            this.missing = missing;
        }
    }

    /**
     * The keyed node and its properties ``names`` (run stamp, flag and the key itself), read
     * in one walk. An id hint from the export is used when its node still has the label and
     * the key; otherwise (deleted, reused, unknown) the key index finds the node.
     */
    private Map.Entry<Node, Map<String, Object>> locate(long hint, Label label, String key,
                                                        String value, String[] names) {
        if (hint >= 0) {
            try {
                Node node = tx.getNodeById(hint);
                if (node.hasLabel(label)) {
                    Map<String, Object> current = node.getProperties(names);
                    if (value.equals(current.get(key))) {
                        return Map.entry(node, current);
                    }
                }
            } catch (NotFoundException gone) {
                // fall through to the index
            }
        }
        Node node = tx.findNode(label, key, value);
        return node == null ? null : Map.entry(node, node.getProperties(names));
    }

    @Procedure(name = "sybilgnn.scores.write", mode = Mode.WRITE)
    @Description("One batch of a scoring run: score, flag, run stamp and score band of each keyed "
            + "node; nodeIds (int64 LE, may be empty) are the export's internal ids, checked against "
            + "the key and used instead of the key index when they still match.")
    public Stream<WriteResult> writeScores(@Name("label") String label, @Name("key") String key,
                                           @Name("keys") List<String> keys,
                                           @Name("scores") byte[] packedScores,
                                           @Name("flags") byte[] flags,
                                           @Name("runId") String runId,
                                           @Name("modelVersion") String modelVersion,
                                           @Name("scoredAt") ZonedDateTime scoredAt,
                                           @Name("bandLabels") List<String> bandLabels,
                                           @Name("bands") byte[] bands,
                                           @Name("nodeIds") byte[] packedNodeIds) {
        double[] scores = unpackDoubles(packedScores);
        long[] nodeIds = unpackLongs(packedNodeIds);
        if (scores.length != keys.size() || flags.length != keys.size()
                || bands.length != keys.size()) {
            throw new IllegalArgumentException("sybilgnn.scores.write: " + keys.size() + " keys, "
                    + scores.length + " scores, " + flags.length + " flags and " + bands.length
                    + " bands");
        }
        Label nodeLabel = Label.label(label);
        Label[] bandLabel = new Label[bandLabels.size()];
        for (int b = 0; b < bandLabel.length; b++) {
            bandLabel[b] = Label.label(bandLabels.get(b));
        }
        String[] readFirst = {"run_id", "sybil_flag", key};
        long written = 0;
        long missing = 0;
        for (int i = 0; i < scores.length; i++) {
            Map.Entry<Node, Map<String, Object>> found = locate(
                    nodeIds.length == keys.size() ? nodeIds[i] : -1, nodeLabel, key, keys.get(i),
                    readFirst);
            if (found == null) {
                missing++;
                continue;
            }
            Node node = found.getKey();
            Map<String, Object> current = found.getValue();
            // the previous run's flag stays readable for "newly flagged / no longer flagged";
            // a batch written again for the same run keeps what it saw the first time
            if (!runId.equals(current.get("run_id"))) {
                node.setProperty("prev_sybil_flag", current.getOrDefault("sybil_flag", Boolean.FALSE));
            }
            node.setProperty("sybil_score", scores[i]);
            node.setProperty("sybil_flag", flags[i] != 0);
            node.setProperty("scored_at", scoredAt);
            node.setProperty("model_version", modelVersion);
            node.setProperty("run_id", runId);
            // exactly one score-band label (the Browser style sizes accounts by it); labels
            // already right are left alone so a re-score changes no label record
            for (int b = 0; b < bandLabel.length; b++) {
                boolean wanted = bands[i] == b;
                if (node.hasLabel(bandLabel[b]) != wanted) {
                    if (wanted) {
                        node.addLabel(bandLabel[b]);
                    } else {
                        node.removeLabel(bandLabel[b]);
                    }
                }
            }
            written++;
        }
        return Stream.of(new WriteResult(written, missing));
    }
}
