package zoo.inference;

/**
 * OpenVINO refused an operation: reading a model, compiling it, accepting an input tensor or
 * running inference.
 *
 * <p>Carries OpenVINO's status code ({@code ov_status_e}, e.g. {@code -1} GENERAL_ERROR), its
 * name, and the message OpenVINO gave ({@code ov_get_last_err_msg}). OpenVINO keeps one last
 * message per process, so when several threads fail at the same moment the message may describe
 * another thread's failure; the status is always this call's own.
 */
public class InferenceException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private static final String[] STATUS_NAMES = {
        "OK", "GENERAL_ERROR", "NOT_IMPLEMENTED", "NETWORK_NOT_LOADED", "PARAMETER_MISMATCH",
        "NOT_FOUND", "OUT_OF_BOUNDS", "UNEXPECTED", "REQUEST_BUSY", "RESULT_NOT_READY",
        "NOT_ALLOCATED", "INFER_NOT_STARTED", "NETWORK_NOT_READ", "INFER_CANCELLED",
        "INVALID_C_PARAM", "UNKNOWN_C_ERROR", "NOT_IMPLEMENT_C_METHOD", "UNKNOW_EXCEPTION",
    };

    private final int status;
    private final String nativeMessage;

    /**
     * @param context what Zoo was doing, and what it expected (first part of the message)
     * @param status OpenVINO's {@code ov_status_e} value (negative)
     * @param nativeMessage OpenVINO's own message; may be empty
     */
    public InferenceException(String context, int status, String nativeMessage) {
        super(context + " OpenVINO status " + statusName(status) + " (" + status + ")"
                + (nativeMessage == null || nativeMessage.isEmpty() ? "." : ": " + nativeMessage.strip()));
        this.status = status;
        this.nativeMessage = nativeMessage == null ? "" : nativeMessage;
    }

    /** @return OpenVINO's {@code ov_status_e} value, e.g. {@code -1} for GENERAL_ERROR */
    public int getStatus() {
        return status;
    }

    /** @return the name of {@link #getStatus()}, e.g. {@code "GENERAL_ERROR"} */
    public String getStatusName() {
        return statusName(status);
    }

    /** @return the message OpenVINO gave for this failure (may be empty) */
    public String getNativeMessage() {
        return nativeMessage;
    }

    /**
     * @param status an {@code ov_status_e} value
     * @return its name as in OpenVINO's {@code ov_common.h}, or {@code "STATUS_<n>"} if unknown
     */
    public static String statusName(int status) {
        int index = -status;
        return index >= 0 && index < STATUS_NAMES.length ? STATUS_NAMES[index] : "STATUS_" + status;
    }
}
