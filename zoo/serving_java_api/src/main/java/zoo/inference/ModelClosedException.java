package zoo.inference;

/**
 * The {@link InferenceModel} was used after {@link InferenceModel#close()}: its compiled model and
 * infer requests are released, so Zoo refuses the call before it reaches OpenVINO (a released
 * native handle would crash the JVM instead).
 *
 * <p>An {@link IllegalStateException}, as Java expects of a closed resource, that also carries the
 * OpenVINO status for the condition, {@code NOT_ALLOCATED} ({@code -10}), like an
 * {@link InferenceException}; there is no native message because no native call happened.
 */
public class ModelClosedException extends IllegalStateException {

    private static final long serialVersionUID = 1L;

    /** OpenVINO's {@code ov_status_e} value for an object that is not allocated. */
    public static final int STATUS = -10;

    /** @param context what was attempted on the closed handle */
    public ModelClosedException(String context) {
        super(context + " This InferenceModel is closed (OpenVINO status " + InferenceException.statusName(STATUS)
                + " (" + STATUS + "): its compiled model and infer requests were released); create a new one and"
                + " call load().");
    }

    /** @return OpenVINO's {@code ov_status_e} value for a released object, {@code -10} */
    public int getStatus() {
        return STATUS;
    }

    /** @return {@code "NOT_ALLOCATED"} */
    public String getStatusName() {
        return InferenceException.statusName(STATUS);
    }
}
