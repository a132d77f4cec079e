package pe.sqlguard;

import java.net.URI;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.WeakHashMap;

import org.apache.spark.sql.SparkSession;

/**
 * What the guard allows, set from the driver's Python (py4j), never from SQL: whether DML is allowed, whether
 * USE is (JDBC clients send it on connect), the locations statements may touch and the lake's table names.
 * One policy per JVM; none active means the guard is off (Spark's own jobs run unchecked).
 */
public final class Policy {
    private static volatile Policy current;
    /** Sessions the driver's own code uses to keep the catalog current (never a client's session). */
    private static final Set<SparkSession> exempt = Collections.synchronizedSet(
            Collections.newSetFromMap(new WeakHashMap<>()));

    final boolean write;
    final boolean allowUse;
    final List<String> roots;
    final Set<String> tables;

    private Policy(boolean write, boolean allowUse, List<String> roots, Set<String> tables) {
        this.write = write;
        this.allowUse = allowUse;
        this.roots = roots;
        this.tables = tables;
    }

    /** Turn the guard on: ``roots`` and ``tables`` are newline-separated (locations, lake table names). */
    public static synchronized void activate(boolean write, boolean allowUse, String roots, String tables) {
        List<String> r = new ArrayList<>();
        for (String s : roots.split("\n")) {
            if (!s.isBlank()) r.add(normalise(s.trim()));
        }
        if (r.isEmpty()) throw new IllegalArgumentException("the SQL guard needs at least one lake location");
        Set<String> t = new TreeSet<>();
        for (String s : tables.split("\n")) {
            if (!s.isBlank()) t.add(s.trim().toLowerCase(Locale.ROOT));
        }
        current = new Policy(write, allowUse, Collections.unmodifiableList(r), Collections.unmodifiableSet(t));
    }

    public static synchronized void deactivate() {
        current = null;
    }

    public static Policy current() {
        return current;
    }

    /**
     * Let ``session`` run statements unchecked while a policy is active: the server's catalog refresher
     * re-creates views (DDL) in a session of its own. Only code holding the session object (the driver's
     * Python, over py4j) can name it; SQL cannot, and clients are always given new sessions.
     */
    public static void exempt(SparkSession session) {
        exempt.add(session);
    }

    static boolean isExempt(SparkSession session) {
        return exempt.contains(session);
    }

    /** The same policy, read-only (EXPLAIN's statement is checked as a query). */
    Policy readOnly() {
        return new Policy(false, allowUse, roots, tables);
    }

    /** True when ``location`` (a path or URI) is one of the roots or below one. */
    boolean inside(String location) {
        String loc = normalise(location);
        for (String root : roots) {
            if (loc.equals(root) || loc.startsWith(root.endsWith("/") ? root : root + "/")) return true;
        }
        return false;
    }

    /** ``file:/a/b/../c/`` and ``/a/c`` alike become ``file:/a/c``; other schemes keep their URI. */
    static String normalise(String location) {
        URI uri = new org.apache.hadoop.fs.Path(location).toUri().normalize();
        String scheme = uri.getScheme();
        String path = uri.getPath() == null ? "" : uri.getPath();
        while (path.length() > 1 && path.endsWith("/")) path = path.substring(0, path.length() - 1);
        if (scheme == null || scheme.equals("file")) return "file:" + path;
        return scheme + "://" + (uri.getAuthority() == null ? "" : uri.getAuthority()) + path;
    }
}
