package sybilgnn.neo4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import org.neo4j.graphdb.Direction;
import org.neo4j.graphdb.Label;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.NotFoundException;
import org.neo4j.graphdb.Relationship;
import org.neo4j.graphdb.RelationshipType;
import org.neo4j.graphdb.ResourceIterable;
import org.neo4j.graphdb.Transaction;
import org.neo4j.procedure.Context;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;

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
 * <p>Every procedure only uses the public API on the caller's transaction, so it needs no
 * unrestricted access and sees exactly what a Cypher query in that transaction would see.
 */
public class SybilgnnProcedures {

    /** Bump when a signature or an output changes; the client checks it. */
    public static final long API_VERSION = 1;

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

    private static byte[] packDoubles(double[] values, int n) {
        ByteBuffer buffer = ByteBuffer.allocate(n * 8).order(ByteOrder.LITTLE_ENDIAN);
        buffer.asDoubleBuffer().put(values, 0, n);
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

    /** Row ``n`` of each column in ``names``; the first value of a wrong type goes to bad. */
    private static void readColumns(Map<String, Object> values, List<String> names,
                                    double[][] rows, int n, NodeChunk chunk,
                                    java.util.function.Function<Object, Double> convert) {
        for (int c = 0; c < names.size(); c++) {
            Object raw = values.get(names.get(c));
            Double value = convert.apply(raw);
            if (value == null) {
                if (chunk.bad == null) {
                    chunk.bad = names.get(c) + "\t" + describe(raw);
                }
                value = Double.NaN;
            }
            rows[c][n] = value;
        }
    }

    private static String describe(Object value) {
        if (value != null && value.getClass().isArray()) {
            return "a list";
        }
        return String.valueOf(value);
    }

    /** The node of an internal id if it still exists and has the label, else null. */
    private Node nodeWithLabel(long id, Label label) {
        try {
            Node node = tx.getNodeById(id);
            return node.hasLabel(label) ? node : null;
        } catch (NotFoundException gone) {
            return null;
        }
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
        public List<String> keys;
        /** Numeric columns one after another, float64 LE, NaN where absent. */
        public byte[] numeric;
        public List<List<String>> strings;
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
        Label nodeLabel = Label.label(label);
        String[] names = new String[1 + numeric.size() + strings.size() + times.size()];
        names[0] = key;
        int at = 1;
        for (List<String> group : List.of(numeric, strings, times)) {
            for (String name : group) {
                names[at++] = name;
            }
        }
        long[] found = new long[wanted.length];
        List<String> keys = new ArrayList<>(wanted.length);
        List<List<String>> texts = new ArrayList<>(strings.size());
        for (int s = 0; s < strings.size(); s++) {
            texts.add(new ArrayList<>(wanted.length));
        }
        NodeChunk chunk = new NodeChunk();
        int n = 0;
        double[][] numberRows = new double[numeric.size()][wanted.length];
        double[][] timeRows = new double[times.size()][wanted.length];
        for (long id : wanted) {
            Node node = nodeWithLabel(id, nodeLabel);
            if (node == null) {
                continue;
            }
            Map<String, Object> values = node.getProperties(names);
            String keyText = asText(values.get(key), missing);
            if (keyText == null && chunk.bad == null) {
                chunk.bad = key + "\t" + describe(values.get(key));
            }
            keys.add(keyText == null ? missing : keyText);
            readColumns(values, numeric, numberRows, n, chunk, SybilgnnProcedures::asNumber);
            for (int c = 0; c < strings.size(); c++) {
                Object raw = values.get(strings.get(c));
                String text = asText(raw, missing);
                if (text == null) {
                    if (chunk.bad == null) {
                        chunk.bad = strings.get(c) + "\t" + describe(raw);
                    }
                    text = missing;
                }
                texts.get(c).add(text);
            }
            readColumns(values, times, timeRows, n, chunk, SybilgnnProcedures::asEpochSeconds);
            found[n++] = id;
        }
        double[] numbers = new double[n * numeric.size()];
        for (int c = 0; c < numeric.size(); c++) {
            System.arraycopy(numberRows[c], 0, numbers, c * n, n);
        }
        double[] seconds = new double[n * times.size()];
        for (int c = 0; c < times.size(); c++) {
            System.arraycopy(timeRows[c], 0, seconds, c * n, n);
        }
        chunk.ids = packLongs(found, n);
        chunk.keys = keys;
        chunk.numeric = packDoubles(numbers, n * numeric.size());
        chunk.strings = texts;
        chunk.times = packDoubles(seconds, n * times.size());
        return Stream.of(chunk);
    }

    // ---- edge columns ----------------------------------------------------------------

    public static class EdgeChunk {
        public byte[] src;
        public byte[] dst;
        /** float64 LE, NaN where the weight is absent; empty when no weight was asked for. */
        public byte[] weight;
        public String bad;
    }

    @Procedure(name = "sybilgnn.export.edges", mode = Mode.READ)
    @Description("Outgoing relationships of one type from the source nodes packed in ids.")
    public Stream<EdgeChunk> exportEdges(@Name("ids") byte[] packedIds,
                                         @Name("sourceLabel") String sourceLabel,
                                         @Name("type") String type,
                                         @Name("targetLabel") String targetLabel,
                                         @Name("weight") String weight) {
        long[] sources = unpackLongs(packedIds);
        Label source = Label.label(sourceLabel);
        Label target = targetLabel == null ? null : Label.label(targetLabel);
        RelationshipType relType = RelationshipType.withName(type);
        int capacity = Math.max(16, sources.length * 4);
        long[] src = new long[capacity];
        long[] dst = new long[capacity];
        double[] weights = new double[weight == null ? 0 : capacity];
        EdgeChunk chunk = new EdgeChunk();
        int n = 0;
        for (long id : sources) {
            Node node = nodeWithLabel(id, source);
            if (node == null) {
                continue;
            }
            try (ResourceIterable<Relationship> rels = node.getRelationships(Direction.OUTGOING, relType)) {
                for (Relationship rel : rels) {
                    Node end = rel.getEndNode();
                    if (target != null && !end.hasLabel(target)) {
                        continue;
                    }
                    if (n == src.length) {
                        int grown = src.length * 2;
                        src = java.util.Arrays.copyOf(src, grown);
                        dst = java.util.Arrays.copyOf(dst, grown);
                        if (weight != null) {
                            weights = java.util.Arrays.copyOf(weights, grown);
                        }
                    }
                    src[n] = id;
                    dst[n] = end.getId();
                    if (weight != null) {
                        Object raw = rel.getProperty(weight, null);
                        Double value = asNumber(raw);
                        if (value == null) {
                            if (chunk.bad == null) {
                                chunk.bad = weight + "\t" + describe(raw);
                            }
                            value = Double.NaN;
                        }
                        weights[n] = value;
                    }
                    n++;
                }
            }
        }
        chunk.src = packLongs(src, n);
        chunk.dst = packLongs(dst, n);
        chunk.weight = packDoubles(weights, weight == null ? 0 : n);
        return Stream.of(chunk);
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

    @Procedure(name = "sybilgnn.scores.write", mode = Mode.WRITE)
    @Description("One batch of a scoring run: score, flag, run stamp and score band of each keyed node.")
    public Stream<WriteResult> writeScores(@Name("label") String label, @Name("key") String key,
                                           @Name("keys") List<String> keys,
                                           @Name("scores") byte[] packedScores,
                                           @Name("flags") byte[] flags,
                                           @Name("runId") String runId,
                                           @Name("modelVersion") String modelVersion,
                                           @Name("scoredAt") ZonedDateTime scoredAt,
                                           @Name("bandLabels") List<String> bandLabels,
                                           @Name("bands") byte[] bands) {
        double[] scores = unpackDoubles(packedScores);
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
        long written = 0;
        long missing = 0;
        for (int i = 0; i < scores.length; i++) {
            Node node = tx.findNode(nodeLabel, key, keys.get(i));
            if (node == null) {
                missing++;
                continue;
            }
            // the previous run's flag stays readable for "newly flagged / no longer flagged";
            // a batch written again for the same run keeps what it saw the first time
            if (!runId.equals(node.getProperty("run_id", null))) {
                node.setProperty("prev_sybil_flag", node.getProperty("sybil_flag", Boolean.FALSE));
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
