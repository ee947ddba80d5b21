// The eager hot path of seeded_variational_dropout on CUDA, in C++ (kernels/fast_path.py builds it).
//
// Python keeps every decision: it plans each layout, compiles the Triton kernel and registers the
// result here as a launch record (function handle, grid, block, and what goes in each kernel
// parameter). A call whose layout has a record then runs without Python: seed drawn from torch's
// CUDA generator (kernels/mask_stream.py's seed_from_generator), output allocated,
// cuLaunchKernel, and an autograd node whose backward is C++ too (no GIL on autograd's device
// thread). A call without a record, or on a capturing stream, returns None and Python takes it.
//
// Also here: the generator's graph-safe Philox state (seed and offset pointers plus the offset
// inside the graph), which lets a captured call derive its seed on the device without a kernel.

#include <torch/extension.h>

#ifdef SEEDED_DROPOUT_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <dlfcn.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

// ---- CUDA driver entry points, looked up in the libcuda torch already loaded ------------------

using CUresult = int;
using CUfunction = void*;
using CUstream = void*;
using LaunchKernel = CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                  unsigned, CUstream, void**, void**);
using StreamIsCapturing = CUresult (*)(CUstream, int*);
using FuncGetParamInfo = CUresult (*)(CUfunction, size_t, size_t*, size_t*);
using GetErrorString = CUresult (*)(CUresult, const char**);
using CtxGetCurrent = CUresult (*)(void**);
using CtxSetCurrent = CUresult (*)(void*);
using DeviceGet = CUresult (*)(int*, int);
using PrimaryCtxRetain = CUresult (*)(void**, int);

struct Driver {
  LaunchKernel launch_kernel = nullptr;
  StreamIsCapturing stream_is_capturing = nullptr;
  FuncGetParamInfo func_get_param_info = nullptr;  // CUDA >= 12.4; records are refused without it
  GetErrorString get_error_string = nullptr;
  CtxGetCurrent ctx_get_current = nullptr;
  CtxSetCurrent ctx_set_current = nullptr;
  DeviceGet device_get = nullptr;
  PrimaryCtxRetain primary_ctx_retain = nullptr;
};

const Driver& driver() {
  static const Driver loaded = [] {
    Driver d;
    void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
    if (lib == nullptr) lib = dlopen("libcuda.so.1", RTLD_LAZY);
    TORCH_CHECK(lib != nullptr, "seeded_variational_dropout fast path: cannot open libcuda.so.1");
    d.launch_kernel = reinterpret_cast<LaunchKernel>(dlsym(lib, "cuLaunchKernel"));
    d.stream_is_capturing = reinterpret_cast<StreamIsCapturing>(dlsym(lib, "cuStreamIsCapturing"));
    d.func_get_param_info = reinterpret_cast<FuncGetParamInfo>(dlsym(lib, "cuFuncGetParamInfo"));
    d.get_error_string = reinterpret_cast<GetErrorString>(dlsym(lib, "cuGetErrorString"));
    d.ctx_get_current = reinterpret_cast<CtxGetCurrent>(dlsym(lib, "cuCtxGetCurrent"));
    d.ctx_set_current = reinterpret_cast<CtxSetCurrent>(dlsym(lib, "cuCtxSetCurrent"));
    d.device_get = reinterpret_cast<DeviceGet>(dlsym(lib, "cuDeviceGet"));
    d.primary_ctx_retain = reinterpret_cast<PrimaryCtxRetain>(dlsym(lib, "cuDevicePrimaryCtxRetain"));
    TORCH_CHECK(d.launch_kernel && d.stream_is_capturing && d.ctx_get_current && d.ctx_set_current && d.device_get &&
                    d.primary_ctx_retain,
                "seeded_variational_dropout fast path: libcuda lacks entry points");
    return d;
  }();
  return loaded;
}

void check_driver(CUresult result, const char* what) {
  if (result == 0) return;
  const char* message = "unknown error";
  if (driver().get_error_string != nullptr) driver().get_error_string(result, &message);
  TORCH_CHECK(false, "seeded_variational_dropout fast path: ", what, " failed: ", message, " (CUresult ", result, ")");
}

// ---- launch records ---------------------------------------------------------------------------

// What one kernel parameter holds. The order and the constants come from Python's registration.
enum Slot : int64_t {
  kInputPtr = 0,
  kOutputPtr = 1,
  kSeedPtr = 2,  // the kernel ignores it when the seed comes by value; x's pointer goes in
  kSeedLow = 3,
  kSeedHigh = 4,
  kThreshold = 5,
  kScaleBits = 6,
  kConstI32 = 7,
  kConstI64 = 8,
  kNullPtr = 9,  // Triton's scratch pointers (the kernel asks for no scratch memory)
};

struct Record {
  CUfunction function = nullptr;
  unsigned grid = 0;
  unsigned threads = 0;
  unsigned shared_bytes = 0;
  std::vector<std::pair<Slot, int64_t>> params;
};

// A layout: device, dtype, shared dims, sizes, strides and the input's 16-byte alignment, which is
// everything the plan and Triton's specialization depend on (the output is a fresh empty_like).
using Key = std::vector<int64_t>;

struct KeyHash {
  size_t operator()(const Key& key) const {
    size_t h = 0;
    for (int64_t v : key) h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h;
  }
};

// Python clears the table with its own caches (kernels/launch.py, 4096 plans); this limit
// only guards against a caller that registers without ever clearing.
constexpr size_t kRecordLimit = 1 << 16;
constexpr int kMaxParams = 32;

// Records never change once stored: a lookup shares one, it does not copy it.
using RecordPtr = std::shared_ptr<const Record>;

std::mutex records_mutex;
std::unordered_map<Key, RecordPtr, KeyHash> records;
PyObject* fallback = nullptr;  // Python's launch for layouts without a record (owned reference)

Key layout_key(const at::Tensor& x, const std::vector<int64_t>& dims) {
  int64_t dims_mask = 0;
  for (int64_t d : dims) dims_mask |= int64_t{1} << d;
  const auto ndim = x.dim();
  Key key;
  key.reserve(5 + 2 * ndim);
  key.push_back(x.device().index());
  key.push_back(static_cast<int64_t>(x.scalar_type()));
  key.push_back(dims_mask);
  key.push_back(static_cast<int64_t>(reinterpret_cast<uintptr_t>(x.data_ptr()) % 16));
  key.push_back(ndim);
  for (auto s : x.sizes()) key.push_back(s);
  for (auto s : x.strides()) key.push_back(s);
  return key;
}

RecordPtr find_record(const Key& key) {
  std::lock_guard<std::mutex> lock(records_mutex);
  auto it = records.find(key);
  return it == records.end() ? nullptr : it->second;
}

CUstream current_stream(const c10::Device& device) {
  return c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->getStream(device).native_handle();
}

bool capturing(CUstream stream) {
  int status = 0;
  check_driver(driver().stream_is_capturing(stream, &status), "cuStreamIsCapturing");
  return status != 0;
}

// ---- the numbers of one call (the same as kernels/mask_stream.py and kernels/launch.py) ---------

int32_t keep_threshold(double p) { return static_cast<int32_t>(std::nearbyint(p * 65536.0)); }

int64_t scale_bits(double p) {
  const double scale = 1.0 / (1.0 - p);
  int64_t bits;
  std::memcpy(&bits, &scale, sizeof bits);
  return bits;
}

uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// kernels/mask_stream.py's seed_from_generator: splitmix64(initial seed + golden gamma * (offset / 4 + 1)),
// then the offset advances by 4 (tests/test_fast_path.py pins these constants to Python's).
int64_t draw_seed(const c10::Device& device) {
  auto generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  const uint64_t offset = generator.get_offset();
  generator.set_offset(offset + 4);
  return static_cast<int64_t>(splitmix64(generator.current_seed() + 0x9E3779B97F4A7C15ull * (offset / 4 + 1)));
}

// A thread that never called the CUDA runtime (e.g. autograd's device thread, when torch's set_device
// found the device index already current) may have no context: bind the device's primary context,
// as Triton's launcher does.
void ensure_context(int device_index) {
  void* context = nullptr;
  check_driver(driver().ctx_get_current(&context), "cuCtxGetCurrent");
  if (context != nullptr) return;
  int device = 0;
  check_driver(driver().device_get(&device, device_index), "cuDeviceGet");
  check_driver(driver().primary_ctx_retain(&context, device), "cuDevicePrimaryCtxRetain");
  check_driver(driver().ctx_set_current(context), "cuCtxSetCurrent");
}

// out = the op on x, through a record (out is a fresh empty_like(x), 16-byte aligned as recorded).
void launch(const Record& record, const at::Tensor& x, const at::Tensor& out, int64_t seed, double p,
            CUstream stream) {
  ensure_context(x.device().index());
  uint64_t values[kMaxParams];
  void* params[kMaxParams];
  const auto seed_bits = static_cast<uint64_t>(seed);
  const size_t count = record.params.size();
  for (size_t i = 0; i < count; ++i) {
    const auto& [slot, constant] = record.params[i];
    int32_t word = 0;
    uint64_t wide = 0;
    bool is_word = false;
    switch (slot) {
      case kInputPtr: case kSeedPtr: wide = reinterpret_cast<uintptr_t>(x.data_ptr()); break;
      case kOutputPtr: wide = reinterpret_cast<uintptr_t>(out.data_ptr()); break;
      case kSeedLow: word = static_cast<int32_t>(seed_bits & 0xFFFFFFFFu); is_word = true; break;
      case kSeedHigh: word = static_cast<int32_t>(seed_bits >> 32); is_word = true; break;
      case kThreshold: word = keep_threshold(p); is_word = true; break;
      case kScaleBits: wide = static_cast<uint64_t>(scale_bits(p)); break;
      case kConstI32: word = static_cast<int32_t>(constant); is_word = true; break;
      case kConstI64: wide = static_cast<uint64_t>(constant); break;
      case kNullPtr: wide = 0; break;
    }
    values[i] = 0;
    if (is_word) std::memcpy(&values[i], &word, sizeof word);
    else values[i] = wide;
    params[i] = &values[i];
  }
  check_driver(driver().launch_kernel(record.function, record.grid, 1, 1, record.threads, 1, 1,
                                      record.shared_bytes, stream, params, nullptr),
               "cuLaunchKernel");
}

at::Tensor python_launch(const at::Tensor& x, int64_t seed, double p, const std::vector<int64_t>& dims) {
  TORCH_CHECK(fallback != nullptr, "seeded_variational_dropout fast path: no Python fallback registered");
  pybind11::gil_scoped_acquire gil;
  pybind11::object result =
      pybind11::reinterpret_borrow<pybind11::object>(fallback)(x, seed, p, pybind11::tuple(pybind11::cast(dims)));
  return result.cast<at::Tensor>();
}

// The op on x through a record (x's layout, checked by the caller); Python's launch in the rare case
// the fresh output is not 16-byte aligned, as the record assumes.
at::Tensor run_record(const Record& record, const at::Tensor& x, int64_t seed, double p,
                      const std::vector<int64_t>& dims) {
  c10::DeviceGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  if (reinterpret_cast<uintptr_t>(out.data_ptr()) % 16 != 0) return python_launch(x, seed, p, dims);
  launch(record, x, out, seed, p, current_stream(x.device()));
  return out;
}

// The op on any tensor with a known seed: through a record if x's layout has one, else Python's launch.
at::Tensor run(const at::Tensor& x, int64_t seed, double p, const std::vector<int64_t>& dims) {
  if (x.is_cuda() && x.numel() > 0) {
    if (const RecordPtr record = find_record(layout_key(x, dims))) return run_record(*record, x, seed, p, dims);
  }
  return python_launch(x, seed, p, dims);
}

// ---- autograd: nothing saved but the seed, p and the dims ------------------------------------

struct SeededDropout : public torch::autograd::Function<SeededDropout> {
  // `record`: x's, when the caller has already looked it up (else null: looked up here).
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, int64_t seed, double p,
                            const std::vector<int64_t>& dims, const RecordPtr& record) {
    ctx->saved_data["seed"] = seed;
    ctx->saved_data["p"] = p;
    ctx->saved_data["dims"] = dims;
    return record ? run_record(*record, x, seed, p, dims) : run(x, seed, p, dims);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const int64_t seed = ctx->saved_data["seed"].toInt();
    const double p = ctx->saved_data["p"].toDouble();
    const std::vector<int64_t> dims = ctx->saved_data["dims"].toIntVector();
    // The op is linear: its backward is itself on the gradient. Through autograd only when a graph
    // of the backward is being recorded (double backward).
    at::Tensor grad_x = torch::autograd::GradMode::is_enabled()
                            ? SeededDropout::apply(grads[0], seed, p, dims, RecordPtr())
                            : run(grads[0], seed, p, dims);
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// ---- what Python calls -------------------------------------------------------------------------

// The whole call when x's layout has a record and the stream is not capturing; else None.
pybind11::object forward(const at::Tensor& x, double p, const std::vector<int64_t>& dims, std::optional<int64_t> seed) {
  if (!x.is_cuda() || x.numel() == 0) return pybind11::none();
  const RecordPtr record = find_record(layout_key(x, dims));
  if (!record) return pybind11::none();
  c10::DeviceGuard guard(x.device());
  if (capturing(current_stream(x.device()))) return pybind11::none();
  const int64_t chosen = seed.has_value() ? *seed : draw_seed(x.device());
  if (x.requires_grad() && torch::autograd::GradMode::is_enabled()) {
    return pybind11::cast(SeededDropout::apply(x, chosen, p, dims, record));
  }
  return pybind11::cast(run_record(*record, x, chosen, p, dims));
}

// Store a launch for x's layout. Refused (False) when the kernel's parameters, as the driver reports
// them, do not match the slots in number and size, so a mismatch never reaches a launch.
bool register_launch(const at::Tensor& x, const std::vector<int64_t>& dims, int64_t function, int64_t grid,
                     int64_t threads, int64_t shared_bytes, const std::vector<std::pair<int64_t, int64_t>>& params) {
  if (!x.is_cuda() || params.size() > kMaxParams || driver().func_get_param_info == nullptr) return false;
  Record record;
  record.function = reinterpret_cast<CUfunction>(static_cast<uintptr_t>(function));
  record.grid = static_cast<unsigned>(grid);
  record.threads = static_cast<unsigned>(threads);
  record.shared_bytes = static_cast<unsigned>(shared_bytes);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto slot = static_cast<Slot>(params[i].first);
    TORCH_CHECK(slot >= kInputPtr && slot <= kNullPtr, "seeded_variational_dropout fast path: bad slot ", params[i].first);
    const bool is_word = slot == kSeedLow || slot == kSeedHigh || slot == kThreshold || slot == kConstI32;
    size_t offset = 0, size = 0;
    if (driver().func_get_param_info(record.function, i, &offset, &size) != 0 || size != (is_word ? 4u : 8u)) {
      return false;
    }
    record.params.emplace_back(slot, params[i].second);
  }
  // Triton appends its scratch pointers (global, profile; how many depends on its version): null here,
  // as Python registers only kernels that ask for no scratch memory.
  for (size_t i = params.size();; ++i) {
    size_t offset = 0, size = 0;
    if (driver().func_get_param_info(record.function, i, &offset, &size) != 0) break;
    if (size != 8 || record.params.size() >= kMaxParams || i >= params.size() + 2) return false;
    record.params.emplace_back(kNullPtr, 0);
  }
  std::lock_guard<std::mutex> lock(records_mutex);
  if (records.size() >= kRecordLimit) records.clear();
  records[layout_key(x, dims)] = std::make_shared<const Record>(std::move(record));
  return true;
}

void set_fallback(pybind11::object function) {
  Py_XDECREF(fallback);
  fallback = function.release().ptr();
}

void clear() {
  std::lock_guard<std::mutex> lock(records_mutex);
  records.clear();
}

size_t record_count() {
  std::lock_guard<std::mutex> lock(records_mutex);
  return records.size();
}

#ifdef SEEDED_DROPOUT_WITH_CUDA
// Under graph capture: the generator's seed and offset (int64 tensors aliasing the generator's own
// device memory, which each replay refreshes) and the offset inside the graph, then advanced by 4 as
// draw_seed advances the offset.
std::tuple<at::Tensor, at::Tensor, int64_t> philox_state(int64_t device_index) {
  auto generator = at::cuda::detail::getDefaultCUDAGenerator(static_cast<c10::DeviceIndex>(device_index));
  std::lock_guard<std::mutex> lock(generator.mutex());
  const at::PhiloxCudaState state = at::check_generator<at::CUDAGeneratorImpl>(generator)->philox_cuda_state(4);
  TORCH_CHECK(state.captured_, "seeded_variational_dropout: philox_state is for CUDA graph capture only");
  const auto options = at::TensorOptions().dtype(at::kLong).device(c10::Device(c10::DeviceType::CUDA, device_index));
  return {at::from_blob(state.seed_.ptr, {1}, options), at::from_blob(state.offset_.ptr, {1}, options),
          static_cast<int64_t>(state.offset_intragraph_)};
}
#endif

// The op with a given seed through the C++ autograd node, on any device (CPU tensors take Python's
// launch): what `forward` runs once it has a seed, callable on its own so tests reach the node on CPU.
at::Tensor apply_with_seed(const at::Tensor& x, int64_t seed, double p, const std::vector<int64_t>& dims) {
  if (x.requires_grad() && torch::autograd::GradMode::is_enabled()) {
    return SeededDropout::apply(x, seed, p, dims, RecordPtr());
  }
  return run(x, seed, p, dims);
}

// For tests: the per-call numbers, to compare with Python's.
std::tuple<int32_t, int64_t> call_scalars(double p) { return {keep_threshold(p), scale_bits(p)}; }

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "C++ hot path of seeded_variational_dropout (see kernels/fast_path.py)";
  m.def("forward", &forward, "the op if x's layout has a record, else None",
        pybind11::arg("x"), pybind11::arg("p"), pybind11::arg("dims"), pybind11::arg("seed") = pybind11::none());
  m.def("register_launch", &register_launch, "store a launch record for x's layout");
  m.def("set_fallback", &set_fallback, "Python's launch, for layouts without a record");
  m.def("clear", &clear, "forget every record");
  m.def("record_count", &record_count, "records stored");
#ifdef SEEDED_DROPOUT_WITH_CUDA
  m.def("philox_state", &philox_state, "graph-safe Philox state of a device's generator (capture only)");
#endif
  m.def("apply_with_seed", &apply_with_seed, "the op with a given seed through the C++ autograd node");
  m.def("call_scalars", &call_scalars, "(keep threshold, scale bits) for p");
  m.def("draw_seed", [](int64_t index) { return draw_seed(c10::Device(c10::DeviceType::CUDA, index)); },
        "a seed from the CUDA generator, as the op draws it");
}
