"""Which BLAS a baseline's torch ran on; no torch import, so the report can use it too."""


def reference_blas(runtime):
    """True when torch's GEMMs ran on Debian's reference BLAS (netlib libblas.so.3: batched.py decided 50 tokens/s on it against ~1,400 on OpenBLAS):
    the libblas.so.3 alternative resolved to /usr/lib/<arch>/blas/ and no optimised BLAS (OpenBLAS, MKL, BLIS) is
    loaded. A ratio against a baseline on it flatters saeguard, so run.sh and the report refuse one."""
    libs = runtime.get("blas_libraries_loaded", [])
    optimised = any(k in p.lower() for p in libs for k in ("openblas", "mkl", "blis", "atlas"))
    reference = any("/blas/libblas.so" in p for p in libs)
    return reference and not optimised
