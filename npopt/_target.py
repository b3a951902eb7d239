"""Where a buffer lives: host (NumPy) or device (CUDA), and how to launch.

Params that expose ``__cuda_array_interface__`` (numba device arrays, CuPy,
torch CUDA tensors) are updated by the CUDA kernels and their state is
allocated on the same device; NumPy params use the CPU kernels. A tree that
mixes both is refused: npopt never copies between host and device inside a
step.
"""
import numpy as np


def is_device_array(x):
    """True for CUDA arrays (and numba's simulated ones under NUMBA_ENABLE_CUDASIM,
    which expose no __cuda_array_interface__)."""
    if isinstance(x, np.ndarray):
        return False
    return hasattr(x, "__cuda_array_interface__") or type(x).__name__ == "FakeCUDAArray"


def device_ptr(x):
    """The device address of a CUDA array's first element (simulated arrays:
    the host address of the NumPy array they wrap)."""
    cai = getattr(x, "__cuda_array_interface__", None)
    if cai is not None:
        return cai["data"][0]
    return x._ary.__array_interface__["data"][0]


class Host:
    """NumPy buffers and the CPU kernels."""
    device = False

    @staticmethod
    def empty(n, dtype):
        return np.empty(n, dtype)

    @staticmethod
    def full(n, value, dtype):
        return np.full(n, value, dtype)

    @staticmethod
    def launch(cpu, cuda, *args):
        cpu(*args)

    @staticmethod
    def copy_into(dst, src):
        dst[...] = src

    @staticmethod
    def put(x):
        """A small host array (segment tables, per-leaf scalars) where the
        kernels run: here, itself."""
        return x


class Device:
    """CUDA device buffers (numba) and the CUDA kernels."""
    device = True

    @staticmethod
    def _cuda():
        from npopt.kernels._jit import cuda_module
        return cuda_module()

    @classmethod
    def empty(cls, n, dtype):
        return cls._cuda().device_array(n, dtype)

    @classmethod
    def full(cls, n, value, dtype):
        # at init only: a one-off host-to-device copy, never inside a step
        return cls._cuda().to_device(np.full(n, value, dtype))

    @staticmethod
    def launch(cpu, cuda, *args):
        cuda(args[0].shape[0], *args)

    @classmethod
    def put(cls, x):
        """A small host array (segment tables, per-leaf scalars) copied to the
        device for a kernel (a table, never a params-sized buffer)."""
        return cls._cuda().to_device(x)

    @classmethod
    def copy_into(cls, dst, src):
        cuda = cls._cuda()
        if hasattr(cuda, "as_cuda_array"):   # CuPy / torch arrays -> numba views
            src = cuda.as_cuda_array(src)
        dst.copy_to_device(src)              # device to device


def target_of(leaves, name="params"):
    """Host or Device for a list of leaves; refuses a mix of the two."""
    dev = [is_device_array(x) for x in leaves]
    if any(dev):
        if not all(dev):
            raise TypeError(
                f"{name}: expected all leaves on the host (NumPy) or all on a CUDA "
                "device, got a mix; npopt does not copy between host and device")
        return Device
    return Host
