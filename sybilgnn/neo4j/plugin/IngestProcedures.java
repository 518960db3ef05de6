package sybilgnn.neo4j;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.temporal.Temporal;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

import org.neo4j.graphdb.Direction;
import org.neo4j.graphdb.Label;
import org.neo4j.graphdb.Node;
import org.neo4j.graphdb.Relationship;
import org.neo4j.graphdb.RelationshipType;
import org.neo4j.graphdb.Transaction;
import org.neo4j.procedure.Context;
import org.neo4j.procedure.Description;
import org.neo4j.procedure.Mode;
import org.neo4j.procedure.Name;
import org.neo4j.procedure.Procedure;

/**
 * Server-side halves of the transactional (delta) ingest.
 *
 * <p>The Cypher path sends one map per row and lets the slotted runtime interpret
 * {@code MERGE ... ON MATCH SET CASE ...} row by row. These procedures take one batch as
 * columns (one Bolt list per property) and do the same merges through the embedded API, in
 * the caller's transaction: the client keeps its batch markers, retries and ledger exactly
 * as on the Cypher path, and the resulting graph is the same, property for property
 * (times are {@code DateTime}s in UTC, like Cypher's {@code datetime({epochMillis: ms})}).
 */
public class IngestProcedures {

    @Context
    public Transaction tx;

    private static ZonedDateTime time(Object millis) {
        return ZonedDateTime.ofInstant(Instant.ofEpochMilli(((Number) millis).longValue()),
                ZoneOffset.UTC);
    }

    private static long epochMillis(Object stored) {
        return Instant.from((Temporal) stored).toEpochMilli();
    }

    /** A driver value as a property value: lists become the arrays Cypher would store. */
    private static Object storable(Object value) {
        if (!(value instanceof List<?> list)) {
            return value;
        }
        boolean allLong = true;
        boolean allNumber = true;
        boolean allText = true;
        boolean allBool = true;
        for (Object item : list) {
            allLong &= item instanceof Long;
            allNumber &= item instanceof Number;
            allText &= item instanceof String;
            allBool &= item instanceof Boolean;
        }
        int n = list.size();
        if (allLong) {
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = (Long) list.get(i);
            }
            return out;
        }
        if (allNumber) {
            double[] out = new double[n];
            for (int i = 0; i < n; i++) {
                out[i] = ((Number) list.get(i)).doubleValue();
            }
            return out;
        }
        if (allText) {
            return list.toArray(new String[0]);
        }
        if (allBool) {
            boolean[] out = new boolean[n];
            for (int i = 0; i < n; i++) {
                out[i] = (Boolean) list.get(i);
            }
            return out;
        }
        throw new IllegalArgumentException("sybilgnn.ingest: a list property mixes types");
    }

    private static void checkColumns(String what, int rows, List<List<Object>> columns,
                                     List<String> names) {
        if (columns.size() != names.size()) {
            throw new IllegalArgumentException(what + ": " + names.size() + " names and "
                    + columns.size() + " columns");
        }
        for (List<Object> column : columns) {
            if (column.size() != rows) {
                throw new IllegalArgumentException(what + ": a column of " + column.size()
                        + " values for " + rows + " rows");
            }
        }
    }

    /** Nodes by key within one call: a batch names the same IP or account many times. */
    private final class NodeCache {
        private final Label label;
        private final String key;
        private final Map<String, Node> found = new HashMap<>();

        NodeCache(String label, String key) {
            this.label = Label.label(label);
            this.key = key;
        }

        Node get(String value) {
            return found.computeIfAbsent(value, v -> tx.findNode(label, key, v));
        }
    }

    // ---- nodes -------------------------------------------------------------------------

    @Procedure(name = "sybilgnn.ingest.nodes", mode = Mode.WRITE)
    @Description("Set properties of keyed nodes (create: MERGE by the key; else MATCH), one "
            + "column per property name; null removes the property, the columns named in times "
            + "hold epoch milliseconds stored as UTC DateTimes.")
    public Stream<SybilgnnProcedures.WriteResult> nodes(@Name("label") String label, @Name("key") String key,
                               @Name("keys") List<String> keys, @Name("create") boolean create,
                               @Name("names") List<String> names,
                               @Name("columns") List<List<Object>> columns,
                               @Name("times") List<String> times) {
        checkColumns("sybilgnn.ingest.nodes", keys.size(), columns, names);
        Label nodeLabel = Label.label(label);
        Set<String> timeNames = new HashSet<>(times);
        boolean[] isTime = new boolean[names.size()];
        for (int c = 0; c < isTime.length; c++) {
            isTime[c] = timeNames.contains(names.get(c));
        }
        long written = 0;
        long missing = 0;
        for (int i = 0; i < keys.size(); i++) {
            Node node = tx.findNode(nodeLabel, key, keys.get(i));
            if (node == null) {
                if (!create) {
                    missing++;
                    continue;
                }
                node = tx.createNode(nodeLabel);
                node.setProperty(key, keys.get(i));
            }
            for (int c = 0; c < isTime.length; c++) {
                Object value = columns.get(c).get(i);
                if (value == null) {
                    node.removeProperty(names.get(c));
                } else {
                    node.setProperty(names.get(c), isTime[c] ? time(value) : storable(value));
                }
            }
            written++;
        }
        return Stream.of(new SybilgnnProcedures.WriteResult(written, missing));
    }

    // ---- relationships -----------------------------------------------------------------

    /** The existing relationship from ``a`` to ``b``, walked from the end with fewer. */
    private static Relationship existing(Node a, Node b, RelationshipType type) {
        boolean fromA = a.getDegree(type, Direction.OUTGOING) <= b.getDegree(type, Direction.INCOMING);
        Node walk = fromA ? a : b;
        long other = fromA ? b.getId() : a.getId();
        for (Relationship r : walk.getRelationships(fromA ? Direction.OUTGOING : Direction.INCOMING,
                                                   type)) {
            if (r.getOtherNodeId(walk.getId()) == other) {
                return r;
            }
        }
        return null;
    }

    private static Object combine(String rule, Object stored, Object value) {
        switch (rule) {
            case "time_min":
                return ((Number) value).longValue() < epochMillis(stored) ? time(value) : stored;
            case "time_max":
                return ((Number) value).longValue() > epochMillis(stored) ? time(value) : stored;
            case "max":
                return ((Number) value).doubleValue() > ((Number) stored).doubleValue()
                        ? value : stored;
            case "add":
                if (stored instanceof Long s && value instanceof Long v) {
                    return s + v;
                }
                return ((Number) stored).doubleValue() + ((Number) value).doubleValue();
            default:
                throw new IllegalArgumentException("sybilgnn.ingest.relationships: unknown rule "
                        + rule);
        }
    }

    @Procedure(name = "sybilgnn.ingest.relationships", mode = Mode.WRITE)
    @Description("MERGE one relationship per row between keyed nodes (rows whose ends are absent "
            + "are skipped); a new one takes the row's values, an existing one combines them "
            + "per rule: time_min / time_max (epoch ms vs a stored DateTime), max, add.")
    public Stream<SybilgnnProcedures.WriteResult> relationships(@Name("type") String type,
                                       @Name("sourceLabel") String sourceLabel,
                                       @Name("sourceKey") String sourceKey,
                                       @Name("targetLabel") String targetLabel,
                                       @Name("targetKey") String targetKey,
                                       @Name("sources") List<String> sources,
                                       @Name("targets") List<String> targets,
                                       @Name("names") List<String> names,
                                       @Name("rules") List<String> rules,
                                       @Name("columns") List<List<Object>> columns) {
        checkColumns("sybilgnn.ingest.relationships", sources.size(), columns, names);
        if (targets.size() != sources.size() || rules.size() != names.size()) {
            throw new IllegalArgumentException("sybilgnn.ingest.relationships: " + sources.size()
                    + " sources, " + targets.size() + " targets, " + names.size() + " names, "
                    + rules.size() + " rules");
        }
        RelationshipType relType = RelationshipType.withName(type);
        NodeCache from = new NodeCache(sourceLabel, sourceKey);
        NodeCache to = new NodeCache(targetLabel, targetKey);
        long written = 0;
        long missing = 0;
        for (int i = 0; i < sources.size(); i++) {
            Node a = from.get(sources.get(i));
            Node b = a == null ? null : to.get(targets.get(i));
            if (b == null) {
                missing++;
                continue;
            }
            Relationship r = existing(a, b, relType);
            boolean created = r == null;
            if (created) {
                r = a.createRelationshipTo(b, relType);
            }
            for (int c = 0; c < names.size(); c++) {
                String rule = rules.get(c);
                Object value = columns.get(c).get(i);
                boolean isTime = rule.startsWith("time");
                Object result;
                if (created) {
                    result = value == null ? null : (isTime ? time(value) : value);
                } else {
                    Object stored = r.getProperty(names.get(c), null);
                    // Cypher: a comparison or a sum with null is null (the property goes)
                    result = value == null || stored == null ? null : combine(rule, stored, value);
                }
                if (result == null) {
                    r.removeProperty(names.get(c));
                } else {
                    r.setProperty(names.get(c), result);
                }
            }
            written++;
        }
        return Stream.of(new SybilgnnProcedures.WriteResult(written, missing));
    }

    // ---- feature inputs ----------------------------------------------------------------

    /** Columns of {@link #featureInputs}, in this order (NaN where Cypher gives null). */
    public static final List<String> FEATURE_INPUTS = List.of(
            "created_ms", "n_ips", "ip_events", "dc_events", "ip_first_ms", "ip_last_ms",
            "n_instruments", "n_charges", "prepaid_instruments", "foreign_instruments",
            "pay_first_ms", "n_similar", "max_similarity");

    public static class FeatureChunk {
        public List<String> ids;
        public List<String> columns;
        public byte[] values;  // float64 LE, row-major: one row of columns per found id
    }

    private static double number(Object value) {
        return value instanceof Number n ? n.doubleValue() : 0.0;
    }

    private static double minTime(double current, Object stored) {
        if (stored == null) {
            return current;
        }
        double ms = epochMillis(stored);
        return Double.isNaN(current) || ms < current ? ms : current;
    }

    private static double maxTime(double current, Object stored) {
        if (stored == null) {
            return current;
        }
        double ms = epochMillis(stored);
        return Double.isNaN(current) || ms > current ? ms : current;
    }

    @Procedure(name = "sybilgnn.ingest.featureInputs", mode = Mode.READ)
    @Description("Relationship aggregates the account features are computed from (the columns "
            + "of FEATURE_INPUT_QUERY in sybilgnn/ingest/derived.py), for the accounts found.")
    public Stream<FeatureChunk> featureInputs(@Name("ids") List<String> ids) {
        Label account = Label.label("Account");
        Label ip = Label.label("IP");
        Label payment = Label.label("PaymentInstrument");
        RelationshipType usedIp = RelationshipType.withName("USED_IP");
        RelationshipType paidWith = RelationshipType.withName("PAID_WITH");
        RelationshipType similar = RelationshipType.withName("PROMPT_SIMILAR");
        int width = FEATURE_INPUTS.size();
        ByteBuffer out = ByteBuffer.allocate(ids.size() * width * 8).order(ByteOrder.LITTLE_ENDIAN);
        FeatureChunk chunk = new FeatureChunk();
        chunk.ids = new java.util.ArrayList<>();
        chunk.columns = FEATURE_INPUTS;
        for (String id : ids) {
            Node a = tx.findNode(account, "account_id", id);
            if (a == null) {
                continue;
            }
            Object created = a.getProperty("created_at", null);
            Object country = a.getProperty("country", null);
            double nIps = 0, ipEvents = 0, dcEvents = 0, ipFirst = Double.NaN, ipLast = Double.NaN;
            for (Relationship r : a.getRelationships(Direction.OUTGOING, usedIp)) {
                Node i = r.getEndNode();
                if (!i.hasLabel(ip)) {
                    continue;
                }
                nIps++;
                Object events = r.getProperty("n_events", null);
                ipEvents += number(events);
                if (Boolean.TRUE.equals(i.getProperty("is_datacenter", null))) {
                    dcEvents += number(events);
                }
                ipFirst = minTime(ipFirst, r.getProperty("first_seen", null));
                ipLast = maxTime(ipLast, r.getProperty("last_seen", null));
            }
            double nInstr = 0, nCharges = 0, prepaid = 0, foreign = 0, payFirst = Double.NaN;
            for (Relationship p : a.getRelationships(Direction.OUTGOING, paidWith)) {
                Node m = p.getEndNode();
                if (!m.hasLabel(payment)) {
                    continue;
                }
                nInstr++;
                nCharges += number(p.getProperty("n_charges", null));
                if (Boolean.TRUE.equals(m.getProperty("is_prepaid", null))) {
                    prepaid++;
                }
                Object issuer = m.getProperty("issuer_country", null);
                if (issuer != null && country != null && !issuer.equals(country)) {
                    foreign++;
                }
                payFirst = minTime(payFirst, p.getProperty("first_seen", null));
            }
            double nSimilar = 0, maxSimilarity = Double.NaN;
            for (Relationship s : a.getRelationships(Direction.BOTH, similar)) {
                if (!s.getOtherNode(a).hasLabel(account)) {
                    continue;
                }
                nSimilar += s.getStartNodeId() == s.getEndNodeId() ? 2 : 1;
                Object value = s.getProperty("similarity", null);
                if (value instanceof Number v
                        && (Double.isNaN(maxSimilarity) || v.doubleValue() > maxSimilarity)) {
                    maxSimilarity = v.doubleValue();
                }
            }
            chunk.ids.add(id);
            double[] row = {created == null ? Double.NaN : epochMillis(created), nIps, ipEvents,
                dcEvents, ipFirst, ipLast, nInstr, nCharges, prepaid, foreign, payFirst, nSimilar,
                maxSimilarity};
            for (double value : row) {
                out.putDouble(value);
            }
        }
        chunk.values = java.util.Arrays.copyOf(out.array(), out.position());
        return Stream.of(chunk);
    }

    // ---- stored properties -------------------------------------------------------------

    public static class PropertyColumns {
        public List<String> ids;
        public List<List<Object>> columns;
    }

    /** A property value as the driver should see it (arrays as lists, like Cypher's). */
    private static Object readable(Object value) {
        if (value == null || !value.getClass().isArray()) {
            return value;
        }
        int n = java.lang.reflect.Array.getLength(value);
        List<Object> out = new java.util.ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            out.add(java.lang.reflect.Array.get(value, i));
        }
        return out;
    }

    @Procedure(name = "sybilgnn.ingest.properties", mode = Mode.READ)
    @Description("Properties names of the keyed nodes found (null where absent), one column per "
            + "name: what UNWIND ... MATCH ... RETURN n.p reads, without Cypher's row interpreter.")
    public Stream<PropertyColumns> properties(@Name("label") String label, @Name("key") String key,
                                              @Name("keys") List<String> keys,
                                              @Name("names") List<String> names) {
        Label nodeLabel = Label.label(label);
        String[] wanted = names.toArray(new String[0]);
        PropertyColumns out = new PropertyColumns();
        out.ids = new java.util.ArrayList<>();
        out.columns = new java.util.ArrayList<>();
        for (int c = 0; c < wanted.length; c++) {
            out.columns.add(new java.util.ArrayList<>());
        }
        for (String value : keys) {
            Node node = tx.findNode(nodeLabel, key, value);
            if (node == null) {
                continue;
            }
            out.ids.add(value);
            Map<String, Object> found = node.getProperties(wanted);
            for (int c = 0; c < wanted.length; c++) {
                out.columns.get(c).add(readable(found.get(wanted[c])));
            }
        }
        return Stream.of(out);
    }

    // ---- similarity cap ----------------------------------------------------------------

    public static class OverCap {
        public List<String> account;
        public List<String> other;
        public List<Double> similarity;
        public List<Object> nShared;
        public List<String> rel;
    }

    @Procedure(name = "sybilgnn.ingest.overCap", mode = Mode.READ)
    @Description("Every PROMPT_SIMILAR edge of the accounts of ids that have more than cap of "
            + "them (the rows of OVER_CAP_QUERY in sybilgnn/ingest/derived.py), as columns.")
    public Stream<OverCap> overCap(@Name("ids") List<String> ids, @Name("cap") long cap) {
        Label account = Label.label("Account");
        RelationshipType similar = RelationshipType.withName("PROMPT_SIMILAR");
        OverCap out = new OverCap();
        out.account = new java.util.ArrayList<>();
        out.other = new java.util.ArrayList<>();
        out.similarity = new java.util.ArrayList<>();
        out.nShared = new java.util.ArrayList<>();
        out.rel = new java.util.ArrayList<>();
        for (String id : ids) {
            Node a = tx.findNode(account, "account_id", id);
            if (a == null || a.getDegree(similar, Direction.BOTH) <= cap) {
                continue;
            }
            for (Relationship r : a.getRelationships(Direction.BOTH, similar)) {
                Node b = r.getOtherNode(a);
                if (!b.hasLabel(account)) {
                    continue;
                }
                Object value = r.getProperty("similarity", null);
                out.account.add(id);
                out.other.add((String) b.getProperty("account_id", null));
                out.similarity.add(value instanceof Number n ? n.doubleValue() : null);
                out.nShared.add(r.getProperty("n_shared", null));
                out.rel.add(r.getElementId());
            }
        }
        return Stream.of(out);
    }
}
