package io.saeguard.sidecar.testing;

/** Where the reference Python lives: Debian's interpreter, which has python3-numpy and python3-torch. */
public final class PythonReference {
    private PythonReference() {
    }

    /** {@code /usr/bin/python3} (the pyenv python first on PATH lacks Debian's packages); override with -Dsaeguard.python. */
    public static String interpreter() {
        return System.getProperty("saeguard.python", "/usr/bin/python3");
    }
}
