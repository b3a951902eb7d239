"""The compilation policy of every npopt kernel, in one place.

* CPU: ``numba.njit(cache=True, nogil=True, error_model='numpy',
  fastmath={'contract'})``. ``error_model='numpy'`` lets loops vectorise (the
  default 'python' model was 4-11x slower); the only fast-math flag is FMA
  contraction, which jitted XLA and the CUDA compiler apply as well, so the
  three targets round alike. Nothing else (no reassociation, no
  finite-math assumptions): exact numerics are the point of npopt.
* Every loop is compiled twice from the same source: serially, and with
  ``parallel=True`` (its ``prange`` becomes a thread pool) for arrays of at
  least ``PARALLEL_THRESHOLD`` elements. Thread start-up costs microseconds,
  so small arrays stay serial. Set ``NPOPT_PARALLEL_THRESHOLD`` (or
  ``npopt.kernels._jit.PARALLEL_THRESHOLD``) to tune it; a huge value forces
  serial kernels. Both loops give bit-identical results (every iteration
  computes its elements alone; reductions add fixed ``CHUNK``-sized partial
  sums in index order), so which one runs never changes a number.
* Load (see ``_Cores``): a parallel loop ends when its slowest thread
  does, so when another process holds one of the cores, a 2-thread launch
  waits for the scheduler to give that thread a core back: a time slice,
  milliseconds, at any N (an Adam step of 2e5..2e6 float32 elements,
  0.08-1 ms serially on 2 cores, took 1.3-1.5x its serial time beside one
  ``while True: pass`` and 3-16x, up to 12 ms, beside other multi-threaded
  jobs; benchmarks/README.md, "Under load"). Splitting the loop in small
  chunks (``numba.set_parallel_chunksize(16384)``) did not help: the loop
  still ends at a barrier that waits for the descheduled thread.
  Before a parallel launch npopt therefore counts the cores that other
  processes leave free: ``/proc/loadavg``'s running threads, less the caller
  and numba's own pool threads, against the cores this process may use
  (``os.sched_getaffinity``). Fewer than two free: the serial loop; fewer
  than numba's thread count: the launch uses that many threads
  (``numba.set_num_threads`` for the call). The answer is kept
  ``LOAD_CHECK_S`` seconds (``NPOPT_LOAD_CHECK_MS``, default 10; 0 turns
  the check off), so a check (~10 us) is paid at most once per 10 ms.
  A process held to some cores counts the whole machine's threads, so it
  may run serially while other cores are busy elsewhere. Without
  ``/proc`` (not Linux) every launch uses all threads, as before.
* Threads and fork (see ``parallel_gate``): npopt leaves numba's threading
  layer to the user and to numba (``NUMBA_THREADING_LAYER``; numba's
  default takes 'tbb' if installed, else 'omp', else 'workqueue') and makes
  its own parallel launches safe under whichever layer runs, falling back
  to the serial loop where a parallel launch would not be:

  - 'tbb': always parallel (thread-safe and fork-safe);
  - 'omp': parallel, except in a process forked from the one that started
    GNU OpenMP, where a parallel region kills the process ("fork() called
    from a process already using GNU OpenMP"): such a child runs serially;
  - 'workqueue' (fork-safe, but a second concurrent launch aborts the
    process): one npopt parallel launch at a time, behind a non-blocking
    lock; a thread that finds it taken runs the serial loop meanwhile.
    npopt cannot guard other code's parallel numba functions: with
    'workqueue', do not run those from several threads at once.

  (One case goes undetected: npopt imported for the first time in a child
  forked from a process whose own code had started GNU OpenMP.)

  npopt never sets the threading layer itself: it is process-global, and
  any choice would be imposed on every other numba user in the process. To
  keep forked children parallel too, install ``tbb`` or set
  ``NUMBA_THREADING_LAYER=workqueue`` (or ``forksafe``).
* CUDA: ``numba.cuda.jit(cache=True)`` without signatures, so nothing is
  compiled before an array lives on a device. Kernels call the same scalar
  ``rule`` functions as the CPU loops, but never the CPU's compilation of
  them: numba-cuda, when a kernel calls an ``njit`` function, compiles it
  for the GPU with that function's CPU options, and turns any non-empty
  fast-math set, ``{'contract'}`` included, into *all* fast-math flags
  (``div.approx.f32``, ``tanh.approx.f32``, ``ex2/lg2.approx`` for ``**``).
  So ``CudaKernel`` compiles ``device_function()``: the kernel's source
  bound to globals in which every numba CPU function it calls (rules, and
  recursively the rules those call) is a ``cuda.jit(device=True)`` function
  of the same Python source, without fast-math flags (so call rules by
  their global name, ``from .apply import finish``, never as a module
  attribute or through a closure). CUDA contracts FMAs by default, which
  is the CPU's one flag. ``tools/ptx_check.py`` compiles
  every kernel to PTX and fails on any approximate instruction. Under
  numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) kernels run as Python
  and call the CPU-compiled rules, as the CPU loops do. ``numba.cuda`` is
  optional (the ``cuda`` extra) and imported only when a kernel is first
  launched or a device buffer made (``cuda_module``): ``import npopt`` does
  not pay for it. Without it, CUDA kernels raise when launched.
* Solver state machines (``machine``, e.g. ``solver_machine``): their
  scalar logic mirrors the Python solvers' NumPy scalar arithmetic, which
  rounds every product, so it is compiled with *no* fast-math flag at all
  (not even contraction); the vector loops they call keep the CPU policy.
* Compilation is lazy and per dtype: float32 and float64 are the only
  specialisations that occur.
"""
import os
import sys
import threading
import time
import types

import numba
from numba import njit
from numba.core.registry import CPUDispatcher

_CUDA = None   # numba.cuda once imported (see cuda_module)


def cuda_module():
    """``numba.cuda``, imported at the first call (it costs 0.2-1 s, and most
    processes never see a device array); a clear error without the extra."""
    global _CUDA
    if _CUDA is None:
        try:
            from numba import cuda as module
        except ImportError:  # pragma: no cover - depends on the installation
            raise RuntimeError("npopt: CUDA arrays need numba-cuda: "
                               "pip install 'npopt[cuda]'") from None
        _CUDA = module
    return _CUDA


class _LazyCuda:
    """Stands for ``numba.cuda`` in the kernel modules (``cuda.grid(1)`` in a
    kernel's body) without importing it: attribute access imports it, and
    the CUDA compilation binds the real module in its place."""

    def __getattr__(self, name):
        return getattr(cuda_module(), name)

    def __repr__(self):
        return "<numba.cuda, imported at first use>"


cuda = _LazyCuda()

FASTMATH = frozenset({"contract"})
CPU_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=set(FASTMATH))
CUDA_OPTIONS = dict(cache=True)          # no fastmath: see the module docstring
PARALLEL_THRESHOLD = int(os.environ.get("NPOPT_PARALLEL_THRESHOLD", 1 << 17))
LOAD_CHECK_S = float(os.environ.get("NPOPT_LOAD_CHECK_MS", 10)) / 1e3   # 0: no check
MACHINE_OPTIONS = dict(cache=True, nogil=True, error_model="numpy")   # no fastmath at all
MACHINES = []             # the functions compiled with MACHINE_OPTIONS (see machine)
BLOCK_SIZE = 256          # CUDA threads per block
MAX_BLOCKS = 1024         # CUDA grid cap; kernels use grid-stride loops
CHUNK = 4096              # reduction chunk: partial sums over fixed chunks, combined in order


def rule(fn):
    """A scalar update rule: called per element by CPU loops and CUDA kernels.

    Returns the CPU compilation (an njit dispatcher); CUDA kernels get a
    device function of ``fn`` instead (``CudaKernel.device_function``).
    """
    return njit(**CPU_OPTIONS)(fn)


def machine(fn):
    """A solver state machine's function (see the module docstring): the CPU
    policy without FMA contraction."""
    d = njit(**MACHINE_OPTIONS)(fn)
    MACHINES.append(d)
    return d


def _renamed(fn, suffix, globals_=None):
    # A copy of fn named name+suffix (numba names its cache files after the
    # qualified name: the parallel compilation of a loop needs its own file),
    # optionally bound to other globals (the CUDA retargeting below).
    clone = types.FunctionType(fn.__code__, fn.__globals__ if globals_ is None else globals_,
                               fn.__name__ + suffix, fn.__defaults__, fn.__closure__)
    clone.__qualname__ = fn.__qualname__ + suffix
    clone.__module__ = fn.__module__
    clone.__doc__ = fn.__doc__
    clone.__kwdefaults__ = fn.__kwdefaults__
    return clone


# --- threads and fork: which launches may run the parallel loop ----------------------

class _Always:
    """A gate that always opens (the layer is safe here)."""

    def acquire(self, blocking=True):
        return True

    def release(self):
        pass


class _Never(_Always):
    """A gate that never opens (a parallel launch would kill the process)."""

    def acquire(self, blocking=True):
        return False


_ALWAYS, _NEVER = _Always(), _Never()
_state_lock = threading.Lock()
_layer = None            # numba's threading layer, once started
_layer_pid = None        # the process that started it
_workqueue_lock = threading.Lock()


def _started_layer():
    """Start numba's threading layer (the one numba's configuration picks,
    as the first parallel launch would) and return its name."""
    global _layer, _layer_pid
    if _layer is None:
        with _state_lock:
            if _layer is None:
                from numba.np.ufunc import parallel
                if _cores.before is None and not getattr(parallel, "_is_initialized", False):
                    _cores.before = _task_ids()   # the pool's threads come after these
                parallel._launch_threads()
                if _layer_pid is None:
                    _layer_pid = os.getpid()
                _layer = numba.threading_layer()
    return _layer


def _gnu_openmp():
    from numba.np.ufunc import omppool
    return getattr(omppool, "openmp_vendor", "GNU") == "GNU"


def parallel_gate():
    """The gate a parallel launch must acquire (non-blocking) in this process
    and thread; when it does not open, the serial loop runs instead (same
    numbers). See the module docstring."""
    layer = _started_layer()
    if layer == "workqueue":
        return _workqueue_lock
    if layer == "omp" and os.getpid() != _layer_pid and _gnu_openmp():
        return _NEVER
    return _ALWAYS


def _before_fork():
    # A layer started by someone else before npopt looked was still started
    # by this process: a forked child must know that.
    global _layer_pid
    parallel = sys.modules.get("numba.np.ufunc.parallel")   # no import in a fork hook
    if _layer_pid is None and getattr(parallel, "_is_initialized", False):
        _layer_pid = os.getpid()


def _after_fork_in_child():
    # The child has one thread: a lock held by another of the parent's
    # threads at the fork would never be released.
    global _workqueue_lock, _state_lock
    _workqueue_lock = threading.Lock()
    _state_lock = threading.Lock()
    _cores.reset()          # the parent's pool threads are not this process's


if hasattr(os, "register_at_fork"):   # POSIX
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


class _Cores:
    """How many threads a parallel launch may use now: the cores that no
    other process's thread is running on (see the module docstring).

    Linux's ``/proc/loadavg`` counts the threads running or runnable this
    instant (4th field, ``R/T``); those of this process (the caller, and
    numba pool threads still spinning after the last launch, read from
    ``/proc/self/task/<tid>/stat``) are subtracted. The answer is kept for
    ``LOAD_CHECK_S`` seconds (a check costs ~10 us). Without ``/proc``, or
    with ``LOAD_CHECK_S <= 0``, every launch may use all threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        for fd in list(getattr(self, "pool", {}).values()) + [getattr(self, "loadavg", None)]:
            if fd not in (None, False):
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.expires = -1.0
        self.answer = 0
        self.loadavg = None       # fd of /proc/loadavg; False: unavailable
        self.pool = {}            # numba pool thread id -> fd of its stat file
        self.before = None        # thread ids before numba's pool started
        self.launched = 0         # the largest team launched so far

    def threads(self):
        if LOAD_CHECK_S <= 0:
            return numba.config.NUMBA_NUM_THREADS
        now = time.monotonic()
        if now < self.expires:
            return self.answer
        try:
            if self.loadavg is None:
                self.loadavg = os.open("/proc/loadavg", os.O_RDONLY)
                if self.before is None:       # the layer was started by other code
                    self.before = _task_ids()
            if self.loadavg is False:
                return numba.config.NUMBA_NUM_THREADS
            running = int(os.pread(self.loadavg, 128, 0).split()[3].split(b"/")[0])
        except (OSError, ValueError, IndexError):
            self.loadavg = False
            return numba.config.NUMBA_NUM_THREADS
        own = 1                               # the caller
        for tid, fd in list(self.pool.items()):
            try:
                stat = os.pread(fd, 512, 0)
                own += stat[stat.rindex(b")") + 2:][:1] == b"R"
            except (OSError, ValueError):     # the thread has exited
                self.pool.pop(tid, None)
        # others' threads may run on any core this process may use: a process
        # held to some cores (taskset, cpusets) counts the whole machine's
        free = _CPUS - max(0, running - own)
        self.answer = max(0, min(numba.config.NUMBA_NUM_THREADS, free))
        self.expires = now + LOAD_CHECK_S
        return self.answer

    def launch(self, fn, args, threads):
        """fn(*args) on at most ``threads`` threads; learns the ids of the
        pool threads the first time a team of that size runs."""
        learn = threads > self.launched and self.before is not None
        full = threads >= numba.config.NUMBA_NUM_THREADS
        if not full:
            previous = numba.get_num_threads()
            numba.set_num_threads(min(previous, threads))
        try:
            return fn(*args)
        finally:
            if not full:
                numba.set_num_threads(previous)
            if learn:
                with self._lock:
                    self.launched = max(self.launched, threads)
                    for tid in _task_ids() - self.before - set(self.pool):
                        try:
                            self.pool[tid] = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
                        except OSError:
                            pass


def _task_ids():
    try:
        return {int(t) for t in os.listdir("/proc/self/task")} - {threading.get_native_id()}
    except OSError:
        return set()


try:
    _CPUS = len(os.sched_getaffinity(0))
except (AttributeError, OSError):   # not Linux
    _CPUS = os.cpu_count() or 1
_cores = _Cores()


class CpuKernel:
    """A CPU loop over flat arrays, serial below PARALLEL_THRESHOLD elements.

    The first argument's length decides: ``kernel(x, ...)``. Large arrays run
    the parallel loop when ``parallel_gate()`` lets them, else the serial one.
    """

    def __init__(self, fn):
        self.py_func = fn
        self.serial = njit(**CPU_OPTIONS)(fn)
        self.parallel = njit(parallel=True, **CPU_OPTIONS)(_renamed(fn, "__parallel"))
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __call__(self, *args):
        if args[0].shape[0] >= PARALLEL_THRESHOLD:
            gate = parallel_gate()                # starts the layer, even if serial now
            threads = _cores.threads()
            if threads >= 2 and gate.acquire(blocking=False):
                try:
                    return _cores.launch(self.parallel, args, threads)
                finally:
                    gate.release()
        return self.serial(*args)


def cpu_kernel(fn):
    """Decorator: compile a flat-array loop for the CPU (see CpuKernel)."""
    return CpuKernel(fn)


def entry_point(dispatcher, args):
    """The machine code ``dispatcher`` compiled for the types of ``args``,
    as a function that skips numba's per-call type dispatch (fingerprints
    of every argument, the tuples' elements included: ~1 us for a kernel's
    eight arguments, as long as the loop takes at 1e3 elements).

    Only for a caller that checks, every call, that its arguments have
    exactly these types (a step plan: the same arrays, the planned dtype,
    shape and contiguity, writable and aligned grads, the same scalar
    types); it unboxes them as these types without looking. None where the
    loop is not compiled for them (or numba's JIT is disabled): call the
    dispatcher."""
    try:
        return dispatcher.overloads[tuple(numba.typeof(a) for a in args)].entry_point
    except Exception:             # noqa: BLE001 - any failure: the dispatcher
        return None


class PlannedCall:
    """A ``CpuKernel`` called by one step plan: as the kernel decides at or
    above ``PARALLEL_THRESHOLD`` elements (of ``args[0]``, the grads); below,
    the serial loop's ``entry_point`` for the types of the first call's
    arguments, as long as the grads are writable and aligned (the plan
    checks every other argument's type)."""

    __slots__ = ("kernel", "serial", "direct", "resolved")

    def __init__(self, kernel):
        self.kernel, self.serial = kernel, getattr(kernel, "serial", kernel)
        self.direct, self.resolved = None, False

    def __call__(self, *args):
        g = args[0]
        if g.shape[0] >= PARALLEL_THRESHOLD:
            return self.kernel(*args)
        flags = g.flags
        if not (flags.writeable and flags.aligned):
            return self.serial(*args)
        if self.direct is not None:
            return self.direct(*args)
        out = self.serial(*args)
        if not self.resolved:
            self.direct, self.resolved = entry_point(self.serial, args), True
        return out


# --- CUDA: the rules as device functions without fast-math ---------------------------

def _global_names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _retargeted(fn, suffix, memo):
    """``fn`` bound to a copy of its globals in which each numba CPU function
    it refers to is replaced by a CUDA device function of its Python source
    (compiled without fast-math), recursively."""
    for cell in fn.__closure__ or ():
        if isinstance(cell.cell_contents, CPUDispatcher):
            raise TypeError(f"npopt: {fn.__qualname__} calls the numba function "
                            f"{cell.cell_contents.__name__} through a closure; CUDA kernels "
                            "and rules must call rules as module globals")
    swaps = _cuda_swaps(fn)
    for name in _global_names(fn.__code__):
        obj = fn.__globals__.get(name)
        if isinstance(obj, CPUDispatcher):
            swaps[name] = _device_function(obj.py_func, memo)
    return _renamed(fn, suffix, {**fn.__globals__, **swaps})


def _cuda_swaps(fn):
    # the real numba.cuda in place of the lazy stand-in, for the compiler
    # (and for the simulator, which swaps numba.cuda for its fake module);
    # prange is range in a device function (a CPU loop's serial meaning)
    swaps = {}
    for name in _global_names(fn.__code__):
        obj = fn.__globals__.get(name)
        if obj is cuda:
            swaps[name] = cuda_module()
        elif obj is numba.prange:
            swaps[name] = range
    return swaps


CUDA_VARIANTS = {}   # CPU function's py_func -> the source compiled for the GPU instead


def cuda_variant(cpu_function):
    """Decorator: ``fn`` is what the GPU compiles wherever a kernel calls
    ``cpu_function`` (a numba CPU function of kernels/). For the few helpers
    that allocate scratch on the CPU (``np.empty``), which device code cannot:
    the variant takes it from ``cuda.local.array`` or does without, and
    computes the same numbers in the same order."""
    def register(fn):
        CUDA_VARIANTS[cpu_function.py_func] = fn
        return fn
    return register


def _device_function(fn, memo):
    if fn not in memo:
        memo[fn] = None
        source = CUDA_VARIANTS.get(fn, fn)
        memo[fn] = cuda_module().jit(device=True)(_retargeted(source, "", memo))
    elif memo[fn] is None:
        raise TypeError(f"npopt: {fn.__qualname__} is recursive; CUDA device functions "
                        "cannot be")
    return memo[fn]


def _simulated():
    return bool(getattr(numba.config, "ENABLE_CUDASIM", 0))


class CudaKernel:
    """A CUDA kernel launched over ``n`` elements with a grid-stride loop."""

    def __init__(self, fn, block_size=BLOCK_SIZE, cache=True):
        self.py_func = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self._kernel = None
        self.block_size = block_size
        self.options = dict(CUDA_OPTIONS, cache=cache)   # generated source: no cache file

    def device_function(self):
        """The Python function compiled for the GPU: ``py_func`` calling CUDA
        device functions (no fast-math) instead of the CPU-compiled rules.

        Renamed ``<name>__exact`` so that numba's cache never serves a kernel
        compiled before this policy (the cache is keyed by the kernel's own
        file, which did not change). Each call builds fresh device functions.
        """
        return _retargeted(self.py_func, "__exact", {})

    def __call__(self, n, *args):
        if self._kernel is None:
            if _simulated():
                fn = _renamed(self.py_func, "", {**self.py_func.__globals__,
                                                 **_cuda_swaps(self.py_func)})
            else:
                fn = self.device_function()
            self._kernel = cuda_module().jit(**self.options)(fn)
        size = self.block_size
        blocks = max(1, min(MAX_BLOCKS, (n + size - 1) // size))
        self._kernel[blocks, size](*args)


def cuda_kernel(fn):
    """Decorator: a CUDA kernel (compiled at its first launch)."""
    return CudaKernel(fn)
