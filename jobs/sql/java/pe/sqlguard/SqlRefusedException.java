package pe.sqlguard;

/** A statement the SQL guard does not allow: a stable reason code and one line that says why. */
public final class SqlRefusedException extends RuntimeException {
    private final String reason;

    public SqlRefusedException(String reason, String message) {
        super("PE_SQL_REFUSED[" + reason + "] " + message);
        this.reason = reason;
    }

    public String reason() {
        return reason;
    }

    /** The message without the reason prefix. */
    public String line() {
        return getMessage().substring(getMessage().indexOf(']') + 2);
    }
}
