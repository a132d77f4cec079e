package pe.sqlguard;

import java.util.IdentityHashMap;
import java.util.Locale;
import java.util.Set;

import org.apache.spark.sql.catalyst.analysis.UnresolvedFunction;
import org.apache.spark.sql.catalyst.analysis.UnresolvedRelation;
import org.apache.spark.sql.catalyst.catalog.CatalogTable;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.SubqueryExpression;
import org.apache.spark.sql.catalyst.expressions.UserDefinedExpression;
import org.apache.spark.sql.catalyst.expressions.objects.NewInstance;
import org.apache.spark.sql.catalyst.expressions.objects.StaticInvoke;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.SubqueryAlias;
import org.apache.spark.sql.catalyst.trees.TreeNode;
import org.apache.spark.sql.execution.command.ExplainCommand;
import org.apache.spark.sql.execution.datasources.HadoopFsRelation;
import org.apache.spark.sql.execution.datasources.LogicalRelation;
import org.apache.spark.sql.execution.datasources.v2.DataSourceV2Relation;
import scala.jdk.javaapi.CollectionConverters;

/**
 * One statement's check. The decision is made on the analysed plan (EXECUTE IMMEDIATE substituted, views,
 * CTEs and IDENTIFIER resolved): every plan node, including the plans of subqueries, CTE definitions and view
 * bodies, must be on an allow-list; every expression (window specs, lambdas, generators included) is checked
 * against a deny-set of expressions that reach the JVM; every relation must read a location inside the lake.
 * Anything it cannot read is refused. The parsed plan is only looked at for clearer messages.
 *
 * <p>Objects expressions ({@code Invoke}, {@code StaticInvoke}, {@code NewInstance}) are allowed only as Spark's
 * own built-ins produce them: SQL text cannot name their target, and a {@code StaticInvoke}/{@code NewInstance}
 * must target a class of {@code org.apache.spark}. The Java calls SQL can name ({@code reflect},
 * {@code java_method}, {@code try_reflect}) and every user-defined function (Scala, Java, Python, Hive) are refused.
 */
final class PlanGuard {
    static final int MAX_NODES = 200_000;

    /** Plan nodes a read-only query may contain (Spark 4.0 analysed plans; simple class names). */
    static final Set<String> QUERY_NODES = Set.of(
            "Project", "Filter", "Aggregate", "Join", "SubqueryAlias", "View", "WithCTE", "CTERelationDef",
            "CTERelationRef", "Sort", "GlobalLimit", "LocalLimit", "Offset", "Tail", "Union", "Intersect", "Except",
            "Distinct", "Deduplicate", "Window", "Generate", "Expand", "Sample", "OneRowRelation", "LocalRelation",
            "Range", "LogicalRDD", "WithWindowDefinition", "ResolvedHint", "RepartitionByExpression", "Repartition",
            "RebalancePartitions", "LateralJoin", "Subquery", "Pivot", "Unpivot", "PipeOperator");
    /** Relations: allowed when they read inside the lake (checked by {@link #checkRelation}). */
    static final Set<String> RELATIONS = Set.of("LogicalRelation", "DataSourceV2Relation", "HiveTableRelation");
    /* LogicalRDD and LocalRelation hold data the driver's own code made (a DataFrame registered as a view);
     * SQL text cannot create either. */
    /** Read-only commands (metadata, history, plans); Delta's take a table checked like a relation. */
    static final Set<String> READ_COMMANDS = Set.of(
            "DescribeTableCommand", "DescribeColumnCommand", "DescribeDatabaseCommand", "DescribeFunctionCommand",
            "DescribeRelation", "DescribeColumn", "DescribeNamespace", "DescribeFunction",
            "DescribeDeltaHistory", "DescribeDeltaHistoryCommand", "DescribeDeltaDetailCommand",
            "ShowTablesCommand", "ShowTables", "ShowTablesExtended", "ShowViewsCommand", "ShowViews",
            "ShowColumnsCommand", "ShowColumns", "ShowNamespacesCommand", "ShowNamespaces", "ShowFunctionsCommand",
            "ShowFunctions", "ShowTablePropertiesCommand", "ShowTableProperties", "ShowCreateTableCommand",
            "ShowCreateTable", "ShowPartitionsCommand", "ShowPartitions", "ShowCatalogsCommand", "ShowCatalogs",
            "ShowCurrentNamespaceCommand", "ShowCurrentNamespace");
    /** What a read command may name: resolved catalog objects (tables are checked for their location). */
    static final Set<String> COMMAND_OPERANDS = Set.of(
            "ResolvedTable", "ResolvedPersistentView", "ResolvedTempView", "ResolvedNamespace", "ResolvedIdentifier",
            "ResolvedPathBasedDeltaTable", "ResolvedNonPersistentFunc", "ResolvedPersistentFunc");
    /** Delta DML that ``--write`` allows (analysed names); their target relation must be in the lake. */
    static final Set<String> DML_NODES = Set.of(
            "DeltaDelete", "DeltaUpdateTable", "DeltaMergeInto", "DeleteFromTable", "UpdateTable", "MergeIntoTable",
            "AppendData", "OverwriteByExpression", "OverwritePartitionsDynamic", "InsertIntoStatement",
            "DeleteCommand", "UpdateCommand", "MergeIntoCommand", "WriteIntoDeltaCommand",
            "DeltaMergeIntoMatchedUpdateClause", "DeltaMergeIntoMatchedDeleteClause",
            "DeltaMergeIntoNotMatchedInsertClause", "DeltaMergeIntoNotMatchedBySourceUpdateClause",
            "DeltaMergeIntoNotMatchedBySourceDeleteClause");
    /** Parsed DML, for the early, clearer messages. */
    static final Set<String> PARSED_DML = Set.of("InsertIntoStatement", "DeleteFromTable", "UpdateTable",
            "MergeIntoTable");
    /** USE (a JDBC client sends it when it connects): allowed only where the policy says so. */
    static final Set<String> USE_NODES = Set.of("SetCatalogAndNamespace", "SetNamespaceCommand");
    /** Expressions that call into the JVM by a name the statement gives, or run user code. */
    static final Set<String> DENIED_EXPRESSIONS = Set.of(
            "CallMethodViaReflection", "TryReflect", "ScalaUDF", "ScalaUDAF", "ScalaAggregator", "PythonUDF",
            "PythonUDAF", "PythonUDTF", "HiveSimpleUDF", "HiveGenericUDF", "HiveGenericUDTF", "HiveUDAFFunction",
            "UserDefinedPythonTableFunction", "FunctionTableSubqueryArgumentExpression");
    /** Function names refused already in the parse, for a clear message. */
    static final Set<String> DENIED_FUNCTIONS = Set.of("reflect", "java_method", "try_reflect");

    static final String ALLOWED = "allowed: queries over the lake's tables and views, DESCRIBE, SHOW, EXPLAIN; "
            + "with --write also INSERT, UPDATE, DELETE, MERGE on lake tables";

    private final GuardedParser parser;
    private final Policy policy;
    private final IdentityHashMap<Object, Boolean> seen = new IdentityHashMap<>();
    private boolean wrote;

    PlanGuard(GuardedParser parser, Policy policy) {
        this.parser = parser;
        this.policy = policy;
    }

    static String name(Object node) {
        String n = node.getClass().getSimpleName();
        return n.endsWith("$") ? n.substring(0, n.length() - 1) : n;
    }

    // ------------------------------------------------------------------------------------------ parsed plan
    /** Early refusals with the clearest message: DML without --write or on a target that is not a lake table,
     * a Java call by name. Allows nothing by itself. */
    void checkParsed(TreeNode<?> node) {
        visit(node);
        String n = name(node);
        if (node instanceof UnresolvedFunction f) {
            String fn = f.nameParts().last().toLowerCase(Locale.ROOT);
            if (DENIED_FUNCTIONS.contains(fn)) {
                throw new SqlRefusedException("function_not_allowed", "function " + fn + " is not allowed in pe sql");
            }
        }
        if (n.equals("ExpressionWithUnresolvedIdentifier")) {  // IDENTIFIER('java_' || 'method')(...)
            String fn = literalText((Expression) node.productIterator().next());
            if (fn != null) {
                fn = fn.substring(fn.lastIndexOf('.') + 1).replace("`", "").trim().toLowerCase(Locale.ROOT);
                if (DENIED_FUNCTIONS.contains(fn)) {
                    throw new SqlRefusedException("function_not_allowed", "function " + fn + " is not allowed in pe sql");
                }
            }
        }
        if (PARSED_DML.contains(n)) {
            if (!policy.write) throw readOnly(n);
            String target = dmlTarget((LogicalPlan) node);
            if (target == null || !policy.tables.contains(target.toLowerCase(Locale.ROOT))) {
                throw new SqlRefusedException("write_target", words(n) + " may only write to a lake table by name ("
                        + (policy.tables.isEmpty() ? "none yet" : String.join(", ", policy.tables)) + "), not "
                        + (target == null ? "a path" : target));
            }
        }
        for (TreeNode<?> child : CollectionConverters.asJava(node.children())) checkParsed(child);
        for (TreeNode<?> inner : CollectionConverters.asJava(node.innerChildren())) checkParsed(inner);
        if (node instanceof LogicalPlan p) {
            for (Expression e : CollectionConverters.asJava(p.expressions())) checkParsed(e);
        }
    }

    /** The text of a string literal or a concatenation of them; null for anything else (never evaluated). */
    private static String literalText(Expression e) {
        if (e instanceof org.apache.spark.sql.catalyst.expressions.Literal l) {
            return l.value() == null ? null : l.value().toString();
        }
        if (!name(e).equals("Concat")) return null;
        StringBuilder out = new StringBuilder();
        for (Expression c : CollectionConverters.asJava(e.children())) {
            String part = literalText(c);
            if (part == null) return null;
            out.append(part);
        }
        return out.toString();
    }

    private static String dmlTarget(LogicalPlan dml) {
        Object rel = dml.productIterator().next();  // table / targetTable is the first field of all four
        while (rel instanceof SubqueryAlias a) rel = a.child();
        if (!(rel instanceof UnresolvedRelation r)) return null;
        var parts = CollectionConverters.asJava(r.multipartIdentifier());
        return parts.size() == 1 ? parts.get(0) : null;
    }

    // ---------------------------------------------------------------------------------------- analysed plan
    /** The decision: ``read:<root>`` or ``write:<root>``, or {@link SqlRefusedException}. */
    String checkAnalysed(LogicalPlan analysed) {
        seen.clear();
        plan(analysed);
        return (wrote ? "write:" : "read:") + name(analysed);
    }

    private void visit(Object node) {
        if (seen.size() >= MAX_NODES) {
            throw new SqlRefusedException("too_large", "the statement's plan has more than " + MAX_NODES + " nodes");
        }
        seen.put(node, Boolean.TRUE);
    }

    private void plan(LogicalPlan p) {
        if (seen.containsKey(p)) return;
        visit(p);
        String n = name(p);
        if (n.equals("ExplainCommand")) {  // its statement is a parsed plan: a query, checked as one of its own
            LogicalPlan explained = ((ExplainCommand) p).logicalPlan();
            if (explained instanceof org.apache.spark.sql.catalyst.plans.logical.Command) {
                throw new SqlRefusedException("statement_not_allowed", "EXPLAIN of " + words(name(explained))
                        + " is not allowed in pe sql (EXPLAIN takes a query)");
            }
            parser.check(explained, policy.readOnly());
            return;
        }
        if (RELATIONS.contains(n)) {
            checkRelation(p, n);
        } else if (READ_COMMANDS.contains(n)) {
            operands(p);
        } else if (DML_NODES.contains(n)) {
            if (!policy.write) throw readOnly(n);
            wrote = true;
            fields(p);  // Delta's commands hold their target and source as fields, not as children
        } else if (USE_NODES.contains(n) && policy.allowUse) {
            return;
        } else if (!QUERY_NODES.contains(n)) {
            throw new SqlRefusedException("statement_not_allowed", words(n) + " is not allowed in pe sql (" + ALLOWED
                    + ")");
        }
        for (Expression e : CollectionConverters.asJava(p.expressions())) expression(e);
        for (LogicalPlan child : CollectionConverters.asJava(p.children())) plan(child);
        for (Object inner : CollectionConverters.asJava(p.innerChildren())) other(inner);
    }

    private void other(Object node) {
        if (node instanceof LogicalPlan p) {
            plan(p);
        } else if (node instanceof Expression e) {
            expression(e);
        } else {
            throw new SqlRefusedException("node_not_allowed", "cannot check " + name(node) + " in the statement");
        }
    }

    private void expression(Expression e) {
        if (seen.containsKey(e)) return;
        visit(e);
        String n = name(e);
        if (DENIED_EXPRESSIONS.contains(n) || e instanceof UserDefinedExpression) {
            throw new SqlRefusedException("function_not_allowed", "function " + e.prettyName()
                    + " is not allowed in pe sql (it calls into the JVM or runs user code)");
        }
        if (e instanceof StaticInvoke s) sparkClass(s.staticObject(), n);
        if (e instanceof NewInstance ni) sparkClass(ni.cls(), n);
        if (e instanceof SubqueryExpression s) plan(s.plan());
        for (Expression child : CollectionConverters.asJava(e.children())) expression(child);
        for (Object inner : CollectionConverters.asJava(e.innerChildren())) other(inner);
    }

    private static void sparkClass(Class<?> cls, String node) {
        if (!cls.getName().startsWith("org.apache.spark.")) {
            throw new SqlRefusedException("function_not_allowed", node + " of " + cls.getName() + " is not allowed");
        }
    }

    // ---------------------------------------------------------------------------------------------- locations
    private void checkRelation(LogicalPlan p, String n) {
        if (p instanceof LogicalRelation r) {
            if (!(r.relation() instanceof HadoopFsRelation fs)) {
                throw new SqlRefusedException("source_not_allowed", "reading " + name(r.relation()) + " is not allowed");
            }
            for (Object root : CollectionConverters.asJava(fs.location().rootPaths())) location(root.toString());
            if (r.catalogTable().isDefined()) catalogLocation(r.catalogTable().get());
        } else if (p instanceof DataSourceV2Relation r) {
            deltaTable(r.table());
        } else {  // HiveTableRelation
            catalogLocation((CatalogTable) p.productIterator().next());
        }
    }

    /** The operands of a read command: resolved catalog objects; Delta tables must be in the lake. */
    private void operands(LogicalPlan command) {
        for (Object field : CollectionConverters.asJava(command.productIterator().toSeq())) {
            if (name(field).equals("DeltaTableV2")) deltaTable(field);
        }
        for (LogicalPlan child : CollectionConverters.asJava(command.children())) {
            String n = name(child);
            if (!COMMAND_OPERANDS.contains(n)) {
                throw new SqlRefusedException("statement_not_allowed", words(name(command)) + " of " + words(n)
                        + " is not allowed in pe sql");
            }
            visit(child);
            for (Object field : CollectionConverters.asJava(child.productIterator().toSeq())) {
                if (name(field).equals("DeltaTableV2")) deltaTable(field);
            }
        }
    }

    /** A write's fields: plans and expressions are checked like children, Delta's table handles for location. */
    private void fields(Object node) {
        for (Object field : CollectionConverters.asJava(((scala.Product) node).productIterator().toSeq())) field(field);
    }

    private void field(Object f) {
        if (f instanceof scala.Option<?> o) {
            if (o.isDefined()) field(o.get());
        } else if (f instanceof scala.collection.Iterable<?> it) {
            for (Object x : CollectionConverters.asJava(it.toSeq())) field(x);
        } else if (f instanceof LogicalPlan p) {
            plan(p);
        } else if (f instanceof Expression e) {
            expression(e);
        } else if (f instanceof CatalogTable t) {
            catalogLocation(t);
        } else if (DELTA_LOCATIONS.containsKey(name(f))) {
            deltaLocation(f);
        }
    }

    /** Delta's table handles and the method that gives their location. */
    static final java.util.Map<String, String> DELTA_LOCATIONS = java.util.Map.of(
            "DeltaTableV2", "path", "DeltaLog", "dataPath", "TahoeLogFileIndex", "path");

    private void deltaTable(Object table) {
        if (!name(table).equals("DeltaTableV2")) {
            throw new SqlRefusedException("source_not_allowed", "reading " + name(table) + " is not allowed");
        }
        deltaLocation(table);
    }

    private void deltaLocation(Object handle) {
        try {
            location(handle.getClass().getMethod(DELTA_LOCATIONS.get(name(handle))).invoke(handle).toString());
        } catch (ReflectiveOperationException e) {
            throw new SqlRefusedException("guard_error", "cannot read the location of " + name(handle) + " (" + e + ")");
        }
    }

    private void catalogLocation(CatalogTable table) {
        location(table.location().toString());
    }

    private void location(String loc) {
        if (!policy.inside(loc)) {
            throw new SqlRefusedException("outside_lake", loc + " is outside the lake; pe sql reads and writes only "
                    + "the lake's tables");
        }
    }

    // ------------------------------------------------------------------------------------------------ messages
    private static SqlRefusedException readOnly(String node) {
        return new SqlRefusedException("read_only", words(node) + " writes to the lake; pe sql is read-only unless "
                + "you pass --write");
    }

    static String words(String className) {
        return className.replaceAll("(?<!^)(?=[A-Z][a-z])", " ").toUpperCase(Locale.ROOT);
    }

    /** The node classes of a plan and its expressions' subqueries, indented (for tests and diagnostics). */
    static String tree(LogicalPlan p) {
        StringBuilder out = new StringBuilder();
        tree(p, 0, out);
        return out.toString();
    }

    private static void tree(LogicalPlan p, int depth, StringBuilder out) {
        out.append("  ".repeat(depth)).append(p.getClass().getName());
        for (Object f : CollectionConverters.asJava(p.productIterator().toSeq())) {
            if (!(f instanceof TreeNode) && !(f instanceof scala.collection.Iterable)) out.append(" | ").append(name(f));
        }
        out.append('\n');
        for (LogicalPlan c : CollectionConverters.asJava(p.children())) tree(c, depth + 1, out);
        for (Object c : CollectionConverters.asJava(p.innerChildren())) {
            if (c instanceof LogicalPlan lp) tree(lp, depth + 1, out);
        }
        for (Expression e : CollectionConverters.asJava(p.expressions())) {
            e.foreach(new scala.runtime.AbstractFunction1<Expression, scala.runtime.BoxedUnit>() {
                @Override
                public scala.runtime.BoxedUnit apply(Expression x) {
                    if (x instanceof SubqueryExpression s) tree(s.plan(), depth + 1, out);
                    return scala.runtime.BoxedUnit.UNIT;
                }
            });
        }
    }
}
