"""Build the nnfast extension nnfast._native._kernels: the C kernels in csrc/ behind the Cython
layer src/nnfast/_native/_kernels.pyx (the package itself lives under src/).

Environment switches (all optional):
  NNFAST_NATIVE=1    add -march=native (local builds only; the default build runs on any x86-64)
  NNFAST_SANITIZE=1  build with AddressSanitizer + UBSan (see README, "Sanitizers");
                     =thread builds with ThreadSanitizer instead
  NNFAST_NO_OPENMP=1 build single-threaded even if the compiler supports OpenMP
"""
import glob
import os
import sys
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n > 0 ? 0 : 1;
    }
    """
)


def _env_on(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _compiler_has_openmp(compiler):
    """Compile and link a tiny OpenMP program; True if both succeed."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe_openmp.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, "probe_openmp", output_dir=tmp,
                                     extra_postargs=["-fopenmp"])
        except Exception:  # any compile or link failure means "no OpenMP"
            return False
    return True


def _build_jobs(requested):
    """Compilers to run at once: build_ext's -j when given, else NNFAST_BUILD_JOBS, else one per
    CPU this process may use (pip passes no -j)."""
    if requested:
        return int(requested)
    env = os.environ.get("NNFAST_BUILD_JOBS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise SystemExit(f"nnfast: NNFAST_BUILD_JOBS must be a whole number of compilers to "
                             f"run at once (1 or more), got {env!r}")
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _compile_in_parallel(compiler, jobs):
    """Make compiler.compile run one compiler process per source on `jobs` threads: setuptools
    compiles the files of one extension one after another, and this package is one extension
    of ~30 C files (a sanitizer build took ~4 minutes serially on 2 cores). Each file is its
    own compile() call, so the object list keeps the sources' order."""
    serial = compiler.compile
    if jobs < 2:
        return

    def compile(sources, *args, **kwargs):
        if len(sources) < 2:
            return serial(sources, *args, **kwargs)
        with ThreadPoolExecutor(jobs) as pool:
            parts = list(pool.map(lambda src: serial([src], *args, **kwargs), sources))
        return [obj for objs in parts for obj in objs]

    compiler.compile = compile


class BuildExt(build_ext):
    """Decides OpenMP/native/sanitizer flags once the real compiler is known."""

    def build_extensions(self):
        cflags, ldflags = ["-O3", "-std=c11", "-fno-strict-aliasing"], []
        if self.compiler.compiler_type != "unix":
            cflags = ["/O2"]
        use_omp = not _env_on("NNFAST_NO_OPENMP") and _compiler_has_openmp(self.compiler)
        if use_omp:
            cflags.append("-fopenmp")
            ldflags.append("-fopenmp")
        else:
            sys.stderr.write("nnfast: OpenMP not available with this compiler; "
                             "building single-threaded kernels.\n")
        if _env_on("NNFAST_NATIVE"):
            cflags.append("-march=native")
        sanitize = os.environ.get("NNFAST_SANITIZE", "").strip().lower()
        # -g1: line tables for the reports' stack traces; full -g made the Cython module's
        # compile 3x slower (2m20 against 48 s: gcc's variable tracking on 4 MB of C)
        if sanitize == "thread":  # ThreadSanitizer: the runtime's and the GEMM's threads
            san = ["-fsanitize=thread", "-fno-omit-frame-pointer", "-g1"]
            cflags = [f for f in cflags if f != "-O3"] + ["-O1"] + san
            ldflags += san
        elif _env_on("NNFAST_SANITIZE"):
            san = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                   "-fno-sanitize-recover=undefined", "-g1"]
            cflags = [f for f in cflags if f != "-O3"] + ["-O1"] + san
            ldflags += san
        for ext in self.extensions:
            ext.extra_compile_args = cflags + list(ext.extra_compile_args or [])
            ext.extra_link_args = ldflags + list(ext.extra_link_args or [])
            if use_omp:
                ext.define_macros.append(("NNF_HAVE_OPENMP", "1"))
        _compile_in_parallel(self.compiler, _build_jobs(self.parallel))
        self.parallel = None    # the files of our one extension are what runs in parallel
        super().build_extensions()


def _sources():
    c_files = sorted(glob.glob(os.path.join("csrc", "**", "*.c"), recursive=True))
    return ["src/nnfast/_native/_kernels.pyx"] + c_files


extensions = [
    Extension(
        "nnfast._native._kernels",
        sources=_sources(),
        include_dirs=["csrc", np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=sorted(glob.glob(os.path.join("csrc", "**", "*.h"), recursive=True)),
    )
]

setup(
    package_dir={"": "src"},
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
