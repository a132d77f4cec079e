package pe.sqlguard;

import org.apache.spark.sql.AnalysisException;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.FunctionIdentifier;
import org.apache.spark.sql.catalyst.QueryPlanningTracker;
import org.apache.spark.sql.catalyst.TableIdentifier;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.parser.ParseException;
import org.apache.spark.sql.catalyst.parser.ParserInterface;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import scala.Option;

/**
 * The session's SQL parser with the guard in front: while a {@link Policy} is active, every statement text that
 * reaches {@code parsePlan} (``spark.sql``, the Thrift server, the string of EXECUTE IMMEDIATE) is analysed and
 * checked by {@link PlanGuard} before the plan is handed back, so a refused statement never reaches execution
 * (Spark runs commands eagerly, after analysis). Analysis runs no command.
 */
public final class GuardedParser implements ParserInterface {
    private final SparkSession session;
    private final ParserInterface delegate;

    public GuardedParser(SparkSession session, ParserInterface delegate) {
        this.session = session;
        this.delegate = delegate;
    }

    /** Check ``sqlText`` against the active policy: ``read:<root node>`` or ``write:<root node>``, or refuse. */
    public String check(String sqlText) throws ParseException {
        Policy policy = Policy.current();
        if (policy == null) throw new SqlRefusedException("guard_off", "the SQL guard has no policy; refused");
        SparkSession.setActiveSession(session);
        return check(delegate.parsePlan(sqlText), policy);
    }

    /** Check a parsed plan: clear messages from the parse first, the decision on the analysed plan. */
    String check(LogicalPlan parsed, Policy policy) {
        PlanGuard guard = new PlanGuard(this, policy);
        try {
            guard.checkParsed(parsed);
        } catch (SqlRefusedException e) {
            throw e;
        } catch (RuntimeException | LinkageError e) {
            throw new SqlRefusedException("guard_error", "cannot check the statement (" + e + ")");
        }
        LogicalPlan analysed;
        try {
            analysed = session.sessionState().analyzer()
                    .executeAndCheck(parsed, new QueryPlanningTracker(Option.empty()));
        } catch (Exception | LinkageError e) {
            // the statement cannot run (a missing table, a type error) or its EXECUTE IMMEDIATE is refused
            if (e instanceof AnalysisException || e instanceof SqlRefusedException) throw GuardedParser.<RuntimeException>rethrow(e);
            throw new SqlRefusedException("guard_error", "cannot analyse the statement (" + e + ")");
        }
        try {
            return guard.checkAnalysed(analysed);
        } catch (SqlRefusedException e) {
            throw e;
        } catch (RuntimeException | LinkageError e) {
            throw new SqlRefusedException("guard_error", "cannot check the statement (" + e + ")");
        }
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> T rethrow(Throwable t) throws T {
        throw (T) t;
    }

    /** The analysed plan's node classes as an indented tree (for tests and for extending the allow-lists). */
    public String analysedTree(String sqlText) throws ParseException {
        SparkSession.setActiveSession(session);
        LogicalPlan analysed = session.sessionState().analyzer()
                .executeAndCheck(delegate.parsePlan(sqlText), new QueryPlanningTracker(Option.empty()));
        return PlanGuard.tree(analysed);
    }

    @Override
    public LogicalPlan parsePlan(String sqlText) throws ParseException {
        Policy policy = Policy.current();
        if (policy != null && !Policy.isExempt(session)) check(delegate.parsePlan(sqlText), policy);
        return delegate.parsePlan(sqlText);
    }

    @Override
    public LogicalPlan parseQuery(String sqlText) throws ParseException {
        return delegate.parseQuery(sqlText);
    }

    @Override
    public Expression parseExpression(String sqlText) throws ParseException {
        return delegate.parseExpression(sqlText);
    }

    @Override
    public TableIdentifier parseTableIdentifier(String sqlText) throws ParseException {
        return delegate.parseTableIdentifier(sqlText);
    }

    @Override
    public FunctionIdentifier parseFunctionIdentifier(String sqlText) throws ParseException {
        return delegate.parseFunctionIdentifier(sqlText);
    }

    @Override
    public scala.collection.immutable.Seq<String> parseMultipartIdentifier(String sqlText) throws ParseException {
        return delegate.parseMultipartIdentifier(sqlText);
    }

    @Override
    public StructType parseRoutineParam(String sqlText) throws ParseException {
        return delegate.parseRoutineParam(sqlText);
    }

    @Override
    public StructType parseTableSchema(String sqlText) throws ParseException {
        return delegate.parseTableSchema(sqlText);
    }

    @Override
    public DataType parseDataType(String sqlText) throws ParseException {
        return delegate.parseDataType(sqlText);
    }
}
