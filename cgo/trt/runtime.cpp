// runtime.cpp: runtimes, engines, execution contexts and CUDA-graph replay.
#include "internal.h"

#include <NvInferVersion.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

// Memory APIs: the V2 (int64) calls exist from TensorRT 10.1; 11 removed the V1 calls.
#if NV_TENSORRT_MAJOR > 10 || (NV_TENSORRT_MAJOR == 10 && NV_TENSORRT_MINOR >= 1)
#define GRF_TRT_MEMORY_V2 1
#else
#define GRF_TRT_MEMORY_V2 0
#endif

struct grf_trt_runtime {
  int32_t device = 0;
  std::unique_ptr<nvinfer1::IRuntime> rt;
  std::atomic<int32_t> engines{0};
};

struct grf_trt_engine {
  grf_trt_runtime* owner = nullptr;
  int32_t device = 0;  // the runtime's
  std::unique_ptr<nvinfer1::ICudaEngine> eng;
  std::atomic<int32_t> contexts{0};
};

struct grf_trt_context {
  grf_trt_engine* owner = nullptr;
  std::unique_ptr<nvinfer1::IExecutionContext> ctx;
  int32_t profile = 0;
  void* memory = nullptr;
  int64_t memory_bytes = -1;  // -1: never bound
  std::map<std::string, std::vector<int64_t>> shapes;
  std::map<std::string, void*> addresses;
  // CUDA graph of one enqueue, valid while nothing above changes.
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  bool graph_failed = false;  // capture failed for this state: enqueue directly

  void drop_graph() noexcept {
    if (exec != nullptr) (void)cudaGraphExecDestroy(exec);
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    exec = nullptr;
    graph = nullptr;
    graph_failed = false;
  }
  ~grf_trt_context() { drop_graph(); }
};

namespace {

using grf::fail;
using grf::guard;
using grf::quote;
using grf::require_arg;

nvinfer1::ICudaEngine& engine_of(grf_trt_engine* e) {
  require_arg(e != nullptr && e->eng != nullptr, "engine handle is null");
  return *e->eng;
}

grf_trt_context& context_of(grf_trt_context* c) {
  require_arg(c != nullptr && c->ctx != nullptr, "context handle is null");
  return *c;
}

// io_mode returns the mode of a tensor name or fails with GRF_TRT_ERR_NOT_FOUND.
nvinfer1::TensorIOMode io_mode(nvinfer1::ICudaEngine& e, const char* name) {
  require_arg(name != nullptr, "tensor name is null");
  nvinfer1::TensorIOMode m = e.getTensorIOMode(name);
  if (m == nvinfer1::TensorIOMode::kNONE) fail(GRF_TRT_ERR_NOT_FOUND, "no i/o tensor named " + quote(name));
  return m;
}

int64_t memory_size(nvinfer1::ICudaEngine& e, int32_t profile) {
#if GRF_TRT_MEMORY_V2
  return profile < 0 ? e.getDeviceMemorySizeV2() : e.getDeviceMemorySizeForProfileV2(profile);
#else
  return static_cast<int64_t>(profile < 0 ? e.getDeviceMemorySize() : e.getDeviceMemorySizeForProfile(profile));
#endif
}

grf_trt_engine* wrap_engine(grf_trt_runtime* rt, nvinfer1::ICudaEngine* raw) {
  if (raw == nullptr) {
    grf::trt_fail("plan does not deserialize (not a plan, or built for another tensorrt version or gpu)",
                  GRF_TRT_ERR_PLAN);
  }
  std::unique_ptr<nvinfer1::ICudaEngine> owned(raw);
  auto* e = new grf_trt_engine();
  e->owner = rt;
  e->device = rt->device;
  e->eng = std::move(owned);
  rt->engines.fetch_add(1);
  return e;
}

}  // namespace

extern "C" {

int32_t grf_trt_runtime_create(int32_t device, grf_trt_runtime** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(out != nullptr, "runtime_create: out is null");
    grf::DeviceScope on(device);
    std::unique_ptr<nvinfer1::IRuntime> rt(nvinfer1::createInferRuntime(grf::logger()));
    if (!rt) grf::trt_fail("createInferRuntime failed");
    auto* r = new grf_trt_runtime();
    r->device = device;
    r->rt = std::move(rt);
    *out = r;
  });
}

int32_t grf_trt_runtime_destroy(grf_trt_runtime* rt, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    if (rt == nullptr) return;
    int32_t n = rt->engines.load();
    if (n != 0) fail(GRF_TRT_ERR_INVALID, "runtime_destroy: " + std::to_string(n) + " engine(s) still open");
    grf::DeviceScope on(rt->device);
    delete rt;
  });
}

int32_t grf_trt_engine_deserialize(grf_trt_runtime* rt, const void* data, size_t size, grf_trt_engine** out,
                                   char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(rt != nullptr && out != nullptr, "engine_deserialize: null argument");
    if (data == nullptr || size == 0) fail(GRF_TRT_ERR_PLAN, "empty plan");
    grf::DeviceScope on(rt->device);
    *out = wrap_engine(rt, rt->rt->deserializeCudaEngine(data, size));
  });
}

int32_t grf_trt_engine_load_file(grf_trt_runtime* rt, const char* path, grf_trt_engine** out, char* err,
                                 size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(rt != nullptr && out != nullptr && path != nullptr, "engine_load_file: null argument");
    std::vector<char> plan = grf::read_file(path);
    if (plan.empty()) fail(GRF_TRT_ERR_PLAN, std::string("empty plan file ") + path);
    grf::DeviceScope on(rt->device);
    *out = wrap_engine(rt, rt->rt->deserializeCudaEngine(plan.data(), plan.size()));
  });
}

int32_t grf_trt_engine_destroy(grf_trt_engine* eng, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    if (eng == nullptr) return;
    int32_t n = eng->contexts.load();
    if (n != 0) fail(GRF_TRT_ERR_INVALID, "engine_destroy: " + std::to_string(n) + " context(s) still open");
    grf_trt_runtime* owner = eng->owner;
    grf::DeviceScope on(eng->device);
    delete eng;
    if (owner != nullptr) owner->engines.fetch_sub(1);
  });
}

int32_t grf_trt_engine_num_io(grf_trt_engine* eng, int32_t* n, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(n != nullptr, "engine_num_io: out is null");
    *n = engine_of(eng).getNbIOTensors();
  });
}

int32_t grf_trt_engine_io_info(grf_trt_engine* eng, int32_t index, grf_trt_tensor_info* out, char* err,
                               size_t errlen) {
  return guard(err, errlen, [&] {
    auto& e = engine_of(eng);
    require_arg(out != nullptr, "engine_io_info: out is null");
    if (index < 0 || index >= e.getNbIOTensors()) fail(GRF_TRT_ERR_INVALID, "engine_io_info: index out of range");
    *out = grf_trt_tensor_info{};
    const char* name = e.getIOTensorName(index);
    if (name == nullptr) grf::trt_fail("getIOTensorName failed");
    std::string s(name);
    if (s.size() >= GRF_TRT_MAX_NAME) fail(GRF_TRT_ERR_UNSUPPORTED, "tensor name too long: " + s);
    s.copy(out->name, s.size());
    out->name[s.size()] = '\0';
    out->mode = io_mode(e, name) == nvinfer1::TensorIOMode::kINPUT ? GRF_TRT_MODE_INPUT : GRF_TRT_MODE_OUTPUT;
    out->dtype = grf::abi_dtype(e.getTensorDataType(name));
    grf::from_dims(e.getTensorShape(name), &out->nb_dims, out->dims);
  });
}

int32_t grf_trt_engine_num_profiles(grf_trt_engine* eng, int32_t* n, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(n != nullptr, "engine_num_profiles: out is null");
    *n = engine_of(eng).getNbOptimizationProfiles();
  });
}

int32_t grf_trt_engine_profile_shape(grf_trt_engine* eng, const char* name, int32_t profile,
                                     grf_trt_profile_shape* out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto& e = engine_of(eng);
    require_arg(out != nullptr, "engine_profile_shape: out is null");
    if (io_mode(e, name) != nvinfer1::TensorIOMode::kINPUT) {
      fail(GRF_TRT_ERR_NOT_FOUND, quote(name) + " is not an input");
    }
    if (profile < 0 || profile >= e.getNbOptimizationProfiles()) {
      fail(GRF_TRT_ERR_INVALID, "profile " + std::to_string(profile) + " out of range");
    }
    *out = grf_trt_profile_shape{};
    int32_t nb[3] = {0, 0, 0};
    grf::from_dims(e.getProfileShape(name, profile, nvinfer1::OptProfileSelector::kMIN), &nb[0], out->min);
    grf::from_dims(e.getProfileShape(name, profile, nvinfer1::OptProfileSelector::kOPT), &nb[1], out->opt);
    grf::from_dims(e.getProfileShape(name, profile, nvinfer1::OptProfileSelector::kMAX), &nb[2], out->max);
    if (nb[0] != nb[1] || nb[1] != nb[2]) grf::trt_fail("getProfileShape returned mismatched ranks");
    out->nb_dims = nb[0];
  });
}

int32_t grf_trt_engine_device_memory_size(grf_trt_engine* eng, int32_t profile, int64_t* bytes, char* err,
                                          size_t errlen) {
  return guard(err, errlen, [&] {
    auto& e = engine_of(eng);
    require_arg(bytes != nullptr, "engine_device_memory_size: out is null");
    if (profile < -1 || profile >= e.getNbOptimizationProfiles()) {
      fail(GRF_TRT_ERR_INVALID, "profile " + std::to_string(profile) + " out of range");
    }
    *bytes = memory_size(e, profile);
  });
}

int32_t grf_trt_context_create(grf_trt_engine* eng, grf_trt_context** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto& e = engine_of(eng);
    require_arg(out != nullptr, "context_create: out is null");
    grf::DeviceScope on(eng->device);
    std::unique_ptr<nvinfer1::IExecutionContext> ctx(
        e.createExecutionContext(nvinfer1::ExecutionContextAllocationStrategy::kUSER_MANAGED));
    if (!ctx) grf::trt_fail("createExecutionContext failed");
    auto* c = new grf_trt_context();
    c->owner = eng;
    c->ctx = std::move(ctx);
    eng->contexts.fetch_add(1);
    *out = c;
  });
}

int32_t grf_trt_context_destroy(grf_trt_context* ctx, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    if (ctx == nullptr) return;
    grf_trt_engine* owner = ctx->owner;
    grf::DeviceScope on(owner->device);
    delete ctx;
    if (owner != nullptr) owner->contexts.fetch_sub(1);
  });
}

int32_t grf_trt_context_set_device_memory(grf_trt_context* ctx, void* ptr, int64_t bytes, char* err,
                                          size_t errlen) {
  return guard(err, errlen, [&] {
    auto& c = context_of(ctx);
    require_arg(bytes >= 0, "context_set_device_memory: negative size");
    require_arg(ptr != nullptr || bytes == 0, "context_set_device_memory: null memory");
    if (ptr == c.memory && bytes == c.memory_bytes) return;
#if GRF_TRT_MEMORY_V2
    c.ctx->setDeviceMemoryV2(ptr, bytes);
#else
    c.ctx->setDeviceMemory(ptr);
#endif
    c.memory = ptr;
    c.memory_bytes = bytes;
    c.drop_graph();
  });
}

int32_t grf_trt_context_set_profile(grf_trt_context* ctx, int32_t profile, void* stream, char* err,
                                    size_t errlen) {
  return guard(err, errlen, [&] {
    auto& c = context_of(ctx);
    auto& e = *c.owner->eng;
    if (profile < 0 || profile >= e.getNbOptimizationProfiles()) {
      fail(GRF_TRT_ERR_INVALID, "profile " + std::to_string(profile) + " out of range (engine has " +
                                    std::to_string(e.getNbOptimizationProfiles()) + ")");
    }
    if (profile == c.profile) return;
    grf::DeviceScope on(c.owner->device);
    if (!c.ctx->setOptimizationProfileAsync(profile, static_cast<cudaStream_t>(stream))) {
      grf::trt_fail("setOptimizationProfileAsync(" + std::to_string(profile) + ") failed");
    }
    c.profile = profile;
    c.shapes.clear();
    c.drop_graph();
  });
}

int32_t grf_trt_context_set_input_shape(grf_trt_context* ctx, const char* name, int32_t nb_dims,
                                        const int64_t* dims, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto& c = context_of(ctx);
    auto& e = *c.owner->eng;
    if (io_mode(e, name) != nvinfer1::TensorIOMode::kINPUT) {
      fail(GRF_TRT_ERR_NOT_FOUND, quote(name) + " is not an input");
    }
    nvinfer1::Dims d = grf::to_dims(nb_dims, dims, name);
    nvinfer1::Dims lo = e.getProfileShape(name, c.profile, nvinfer1::OptProfileSelector::kMIN);
    nvinfer1::Dims hi = e.getProfileShape(name, c.profile, nvinfer1::OptProfileSelector::kMAX);
    bool inside = lo.nbDims == d.nbDims && hi.nbDims == d.nbDims;
    for (int32_t i = 0; inside && i < d.nbDims; ++i) inside = lo.d[i] <= d.d[i] && d.d[i] <= hi.d[i];
    if (!inside) {
      fail(GRF_TRT_ERR_SHAPE, "input " + quote(name) + " shape " + grf::dims_string(d) + " is outside profile " +
                                  std::to_string(c.profile) + " " + grf::dims_string(lo) + ".." +
                                  grf::dims_string(hi));
    }
    std::vector<int64_t> key(d.d, d.d + d.nbDims);
    auto it = c.shapes.find(name);
    if (it != c.shapes.end() && it->second == key) return;
    if (!c.ctx->setInputShape(name, d)) grf::trt_fail("setInputShape(" + quote(name) + ") failed", GRF_TRT_ERR_SHAPE);
    c.shapes[name] = key;
    c.drop_graph();
  });
}

int32_t grf_trt_context_set_tensor_address(grf_trt_context* ctx, const char* name, void* ptr, char* err,
                                           size_t errlen) {
  return guard(err, errlen, [&] {
    auto& c = context_of(ctx);
    io_mode(*c.owner->eng, name);
    auto it = c.addresses.find(name);
    if (it != c.addresses.end() && it->second == ptr) return;
    if (!c.ctx->setTensorAddress(name, ptr)) grf::trt_fail("setTensorAddress(" + quote(name) + ") failed");
    c.addresses[name] = ptr;
    c.drop_graph();
  });
}

int32_t grf_trt_context_tensor_shape(grf_trt_context* ctx, const char* name, int32_t* nb_dims, int64_t* dims,
                                     char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto& c = context_of(ctx);
    require_arg(nb_dims != nullptr && dims != nullptr, "context_tensor_shape: null out");
    io_mode(*c.owner->eng, name);
    nvinfer1::Dims d = c.ctx->getTensorShape(name);
    if (d.nbDims < 0) grf::trt_fail("getTensorShape(" + quote(name) + ") failed", GRF_TRT_ERR_SHAPE);
    grf::from_dims(d, nb_dims, dims);
  });
}

}  // extern "C"

namespace {

// ready checks what enqueueV3 needs so that failures get a precise message.
void ready(grf_trt_context& c) {
  auto& e = *c.owner->eng;
  int64_t need = memory_size(e, c.profile);
  if (need > 0 && c.memory_bytes < need) {
    fail(GRF_TRT_ERR_INVALID, "scratch memory " + std::to_string(c.memory_bytes < 0 ? 0 : c.memory_bytes) +
                                  " bytes, profile " + std::to_string(c.profile) + " needs " + std::to_string(need));
  }
  if (!c.ctx->allInputDimensionsSpecified()) fail(GRF_TRT_ERR_SHAPE, "not every input shape is set");
}

void enqueue(grf_trt_context& c, cudaStream_t s) {
  if (!c.ctx->enqueueV3(s)) grf::trt_fail("enqueueV3 failed");
  grf::check_cuda(cudaGetLastError(), "enqueueV3");
}

}  // namespace

extern "C" {

int32_t grf_trt_context_enqueue(grf_trt_context* ctx, void* stream, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto& c = context_of(ctx);
    ready(c);
    grf::DeviceScope on(c.owner->device);
    enqueue(c, static_cast<cudaStream_t>(stream));
  });
}

int32_t grf_trt_context_enqueue_graph(grf_trt_context* ctx, void* stream, int32_t* replayed, char* err,
                                      size_t errlen) {
  return guard(err, errlen, [&] {
    auto& c = context_of(ctx);
    require_arg(replayed != nullptr, "context_enqueue_graph: replayed is null");
    require_arg(stream != nullptr, "context_enqueue_graph: cuda graphs need an explicit stream");
    *replayed = 0;
    grf::DeviceScope on(c.owner->device);
    auto s = static_cast<cudaStream_t>(stream);
    if (c.exec != nullptr) {
      grf::check_cuda(cudaGraphLaunch(c.exec, s), "cudaGraphLaunch");
      *replayed = 1;
      return;
    }
    ready(c);
    enqueue(c, s);  // runs the inference and lets TensorRT settle shape-dependent state
    if (c.graph_failed) return;
    grf::check_cuda(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    bool ok = c.ctx->enqueueV3(s);
    cudaGraph_t g = nullptr;
    cudaError_t e = cudaStreamEndCapture(s, &g);
    if (ok && e == cudaSuccess && g != nullptr) {
      cudaGraphExec_t x = nullptr;
      e = cudaGraphInstantiateWithFlags(&x, g, 0);
      if (e == cudaSuccess) {
        c.graph = g;
        c.exec = x;
        return;
      }
    }
    if (g != nullptr) (void)cudaGraphDestroy(g);
    (void)cudaGetLastError();
    c.graph_failed = true;
    grf::log_message(GRF_TRT_LOG_WARNING, std::string("cuda graph capture failed (") +
                                              (ok ? cudaGetErrorName(e) : "enqueueV3 during capture") +
                                              "); this state runs without a graph");
  });
}

}  // extern "C"
