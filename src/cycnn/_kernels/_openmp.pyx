# Design: what this build of cycnn can do with threads, asked of the compiled code itself.
# openmp_enabled() is 1 when the extensions were compiled with OpenMP; compiler() names the
# compiler that built them; openmp_max_threads() is OpenMP's omp_get_max_threads() (what
# OMP_NUM_THREADS, omp_set_num_threads and threadpoolctl set); runtime_path() is the file of the
# OpenMP runtime the kernels call (the library threadpoolctl must find to limit them). The thread
# count policy itself lives in cycnn/_threads.py.

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int cycnn_openmp_enabled(void) { return 1; }
    static int cycnn_openmp_max_threads(void) { return omp_get_max_threads(); }
    #if defined(__linux__) && defined(_GNU_SOURCE)   /* pyconfig.h defines it on Linux */
    #include <dlfcn.h>
    static const char *cycnn_openmp_runtime_path(void) {
        Dl_info info;
        if (dladdr((void *)&omp_get_max_threads, &info) && info.dli_fname)
            return info.dli_fname;
        return "";
    }
    #else
    static const char *cycnn_openmp_runtime_path(void) { return ""; }
    #endif
    #else
    static int cycnn_openmp_enabled(void) { return 0; }
    static int cycnn_openmp_max_threads(void) { return 1; }
    static const char *cycnn_openmp_runtime_path(void) { return ""; }
    #endif
    #if defined(__clang__)
    #define CYCNN_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define CYCNN_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #define CYCNN_COMPILER "msvc"
    #else
    #define CYCNN_COMPILER "unknown"
    #endif
    static const char *cycnn_compiler(void) { return CYCNN_COMPILER; }
    """
    int cycnn_openmp_enabled()
    int cycnn_openmp_max_threads()
    const char *cycnn_openmp_runtime_path()
    const char *cycnn_compiler()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(cycnn_openmp_enabled())


def openmp_max_threads():
    """omp_get_max_threads() (1 without OpenMP)."""
    return cycnn_openmp_max_threads()


def runtime_path():
    """Path of the OpenMP runtime library the kernels call ('' without OpenMP or off Linux)."""
    return cycnn_openmp_runtime_path().decode(errors="replace")


def compiler():
    """The compiler that built the kernels, e.g. 'gcc 12.2.0'."""
    return cycnn_compiler().decode()
