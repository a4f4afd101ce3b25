// builder.cpp: ONNX -> serialized plan (nvonnxparser + IBuilder), with optimisation
// profiles, workspace limit, precision and a timing cache.
#include "internal.h"

#include <NvInferVersion.h>
#include <NvOnnxParser.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

struct ShapeRange {
  std::array<std::vector<int64_t>, 3> mom;  // min, opt, max
};

}  // namespace

struct grf_trt_builder {
  int32_t device = 0;
  std::vector<std::map<std::string, ShapeRange>> profiles;
  int32_t precision = GRF_TRT_PRECISION_FP32;
  bool strongly_typed = false;
  int64_t workspace = 0;
  int32_t opt_level = -1;
  std::string timing_cache;
};

struct grf_trt_blob {
  std::vector<char> bytes;
};

namespace {

using grf::fail;
using grf::guard;
using grf::quote;
using grf::require_arg;

grf_trt_builder& builder_of(grf_trt_builder* b) {
  require_arg(b != nullptr, "builder handle is null");
  return *b;
}

const char* precision_name(int32_t p) {
  switch (p) {
    case GRF_TRT_PRECISION_FP16: return "fp16";
    case GRF_TRT_PRECISION_BF16: return "bf16";
    default: return "fp32";
  }
}

nvinfer1::Dims dims_of(const std::vector<int64_t>& v, const std::string& name) {
  return grf::to_dims(static_cast<int32_t>(v.size()), v.data(), name.c_str());
}

// apply_precision sets precision flags where the TensorRT version allows weak typing.
void apply_precision(const grf_trt_builder& b, nvinfer1::IBuilderConfig& config) {
  if (b.precision == GRF_TRT_PRECISION_FP32) return;
#if NV_TENSORRT_MAJOR < 11
  if (!b.strongly_typed) {
    // Weak typing is deprecated in late 10.x and gone in 11; it is the documented 10.x way.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    config.setFlag(b.precision == GRF_TRT_PRECISION_FP16 ? nvinfer1::BuilderFlag::kFP16
                                                         : nvinfer1::BuilderFlag::kBF16);
#pragma GCC diagnostic pop
    return;
  }
#else
  (void)config;
#endif
  grf::log_message(GRF_TRT_LOG_WARNING, std::string("strongly typed network: precision ") +
                                            precision_name(b.precision) +
                                            " is taken from the onnx file, not from a builder flag");
}

std::string input_names(const nvinfer1::INetworkDefinition& net) {
  std::string s;
  for (int32_t i = 0; i < net.getNbInputs(); ++i) {
    if (i > 0) s += ", ";
    s += net.getInput(i)->getName();
  }
  return s;
}

void add_profiles(const grf_trt_builder& b, nvinfer1::IBuilder& builder, nvinfer1::INetworkDefinition& net,
                  nvinfer1::IBuilderConfig& config) {
  for (size_t p = 0; p < b.profiles.size(); ++p) {
    nvinfer1::IOptimizationProfile* prof = builder.createOptimizationProfile();
    if (prof == nullptr) grf::trt_fail("createOptimizationProfile failed");
    for (const auto& [name, r] : b.profiles[p]) {
      bool known = false;
      for (int32_t i = 0; i < net.getNbInputs() && !known; ++i) known = name == net.getInput(i)->getName();
      if (!known) {
        fail(GRF_TRT_ERR_NOT_FOUND, "profile " + std::to_string(p) + " names input " + quote(name.c_str()) +
                                        "; the onnx inputs are " + input_names(net));
      }
      const nvinfer1::OptProfileSelector sel[3] = {nvinfer1::OptProfileSelector::kMIN,
                                                   nvinfer1::OptProfileSelector::kOPT,
                                                   nvinfer1::OptProfileSelector::kMAX};
      for (int k = 0; k < 3; ++k) {
        if (!prof->setDimensions(name.c_str(), sel[k], dims_of(r.mom[k], name))) {
          grf::trt_fail("profile " + std::to_string(p) + " input " + quote(name.c_str()) + " rejected",
                        GRF_TRT_ERR_SHAPE);
        }
      }
    }
    if (config.addOptimizationProfile(prof) < 0) {
      grf::trt_fail("profile " + std::to_string(p) + " is invalid", GRF_TRT_ERR_SHAPE);
    }
  }
}

std::unique_ptr<nvinfer1::ITimingCache> load_timing_cache(const grf_trt_builder& b,
                                                          nvinfer1::IBuilderConfig& config) {
  std::vector<char> blob;
  if (std::ifstream(b.timing_cache, std::ios::binary)) blob = grf::read_file(b.timing_cache);
  std::unique_ptr<nvinfer1::ITimingCache> cache(config.createTimingCache(blob.data(), blob.size()));
  if (!cache) grf::trt_fail("timing cache " + b.timing_cache + " does not load", GRF_TRT_ERR_BUILD);
  if (!config.setTimingCache(*cache, false)) {
    grf::trt_fail("timing cache " + b.timing_cache + " does not match this gpu or tensorrt", GRF_TRT_ERR_BUILD);
  }
  return cache;
}

void save_timing_cache(const grf_trt_builder& b, nvinfer1::IBuilderConfig& config) {
  const nvinfer1::ITimingCache* cache = config.getTimingCache();
  if (cache == nullptr) return;
  std::unique_ptr<nvinfer1::IHostMemory> mem(cache->serialize());
  if (!mem) grf::trt_fail("timing cache does not serialize", GRF_TRT_ERR_BUILD);
  grf::write_file_atomic(b.timing_cache, mem->data(), mem->size());
}

}  // namespace

extern "C" {

int32_t grf_trt_builder_create(int32_t device, grf_trt_builder** out, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(out != nullptr, "builder_create: out is null");
    require_arg(device >= 0, "builder_create: negative cuda device index");
    *out = new grf_trt_builder();
    (*out)->device = device;
  });
}

int32_t grf_trt_builder_destroy(grf_trt_builder* b, char* err, size_t errlen) {
  return guard(err, errlen, [&] { delete b; });
}

int32_t grf_trt_builder_add_profile(grf_trt_builder* b, int32_t* index, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto& s = builder_of(b);
    require_arg(index != nullptr, "builder_add_profile: out is null");
    s.profiles.emplace_back();
    *index = static_cast<int32_t>(s.profiles.size() - 1);
  });
}

int32_t grf_trt_builder_set_profile_shape(grf_trt_builder* b, int32_t profile, const char* name, int32_t nb_dims,
                                          const int64_t* min, const int64_t* opt, const int64_t* max, char* err,
                                          size_t errlen) {
  return guard(err, errlen, [&] {
    auto& s = builder_of(b);
    require_arg(name != nullptr && *name != '\0', "builder_set_profile_shape: empty name");
    if (profile < 0 || static_cast<size_t>(profile) >= s.profiles.size()) {
      fail(GRF_TRT_ERR_INVALID, "builder_set_profile_shape: no profile " + std::to_string(profile));
    }
    if (nb_dims < 0 || nb_dims > GRF_TRT_MAX_DIMS || (nb_dims > 0 && (!min || !opt || !max))) {
      fail(GRF_TRT_ERR_SHAPE, "input " + quote(name) + ": bad rank " + std::to_string(nb_dims));
    }
    ShapeRange r;
    for (int32_t i = 0; i < nb_dims; ++i) {
      if (!(0 < min[i] && min[i] <= opt[i] && opt[i] <= max[i])) {
        fail(GRF_TRT_ERR_SHAPE, "input " + quote(name) + " dim " + std::to_string(i) + ": need 0 < min <= opt <= max");
      }
      r.mom[0].push_back(min[i]);
      r.mom[1].push_back(opt[i]);
      r.mom[2].push_back(max[i]);
    }
    s.profiles[static_cast<size_t>(profile)][name] = r;
  });
}

int32_t grf_trt_builder_set_precision(grf_trt_builder* b, int32_t precision, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    auto& s = builder_of(b);
    require_arg(precision == GRF_TRT_PRECISION_FP32 || precision == GRF_TRT_PRECISION_FP16 ||
                    precision == GRF_TRT_PRECISION_BF16,
                "builder_set_precision: not a GRF_TRT_PRECISION_* value");
    s.precision = precision;
  });
}

int32_t grf_trt_builder_set_strongly_typed(grf_trt_builder* b, int32_t on, char* err, size_t errlen) {
  return guard(err, errlen, [&] { builder_of(b).strongly_typed = on != 0; });
}

int32_t grf_trt_builder_set_workspace(grf_trt_builder* b, int64_t bytes, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(bytes >= 0, "builder_set_workspace: negative size");
    builder_of(b).workspace = bytes;
  });
}

int32_t grf_trt_builder_set_optimization_level(grf_trt_builder* b, int32_t level, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(level >= -1 && level <= 5, "builder_set_optimization_level: level not in -1..5");
    builder_of(b).opt_level = level;
  });
}

int32_t grf_trt_builder_set_timing_cache(grf_trt_builder* b, const char* path, char* err, size_t errlen) {
  return guard(err, errlen, [&] { builder_of(b).timing_cache = path != nullptr ? path : ""; });
}

int32_t grf_trt_builder_build(grf_trt_builder* b, const char* onnx_path, grf_trt_blob** out, char* err,
                              size_t errlen) {
  return guard(err, errlen, [&] {
    auto& s = builder_of(b);
    require_arg(onnx_path != nullptr && out != nullptr, "builder_build: null argument");
    if (!std::ifstream(onnx_path)) fail(GRF_TRT_ERR_NOT_FOUND, std::string("cannot open onnx file ") + onnx_path);
    grf::DeviceScope on(s.device);

    std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(grf::logger()));
    if (!builder) grf::trt_fail("createInferBuilder failed", GRF_TRT_ERR_BUILD);
    nvinfer1::NetworkDefinitionCreationFlags flags = 0;
#if NV_TENSORRT_MAJOR < 11
    if (s.strongly_typed) {
      flags |= 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
    }
#endif
    std::unique_ptr<nvinfer1::INetworkDefinition> net(builder->createNetworkV2(flags));
    if (!net) grf::trt_fail("createNetworkV2 failed", GRF_TRT_ERR_BUILD);
    std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*net, grf::logger()));
    if (!parser) grf::trt_fail("createParser failed", GRF_TRT_ERR_BUILD);
    if (!parser->parseFromFile(onnx_path, static_cast<int>(nvinfer1::ILogger::Severity::kWARNING))) {
      std::string msg = std::string("onnx parse of ") + onnx_path + " failed";
      for (int32_t i = 0; i < parser->getNbErrors(); ++i) msg += std::string("; ") + parser->getError(i)->desc();
      fail(GRF_TRT_ERR_BUILD, msg);
    }

    std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
    if (!config) grf::trt_fail("createBuilderConfig failed", GRF_TRT_ERR_BUILD);
    if (s.workspace > 0) {
      config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, static_cast<size_t>(s.workspace));
    }
    if (s.opt_level >= 0) config->setBuilderOptimizationLevel(s.opt_level);
    apply_precision(s, *config);
    add_profiles(s, *builder, *net, *config);
    std::unique_ptr<nvinfer1::ITimingCache> cache;
    if (!s.timing_cache.empty()) cache = load_timing_cache(s, *config);

    std::unique_ptr<nvinfer1::IHostMemory> plan(builder->buildSerializedNetwork(*net, *config));
    if (!plan || plan->size() == 0) grf::trt_fail("buildSerializedNetwork failed", GRF_TRT_ERR_BUILD);
    if (cache) save_timing_cache(s, *config);

    auto* blob = new grf_trt_blob();
    const char* p = static_cast<const char*>(plan->data());
    try {
      blob->bytes.assign(p, p + plan->size());
    } catch (...) {
      delete blob;
      throw;
    }
    *out = blob;
  });
}

int32_t grf_trt_blob_data(grf_trt_blob* blob, const void** data, size_t* size, char* err, size_t errlen) {
  return guard(err, errlen, [&] {
    require_arg(blob != nullptr && data != nullptr && size != nullptr, "blob_data: null argument");
    *data = blob->bytes.data();
    *size = blob->bytes.size();
  });
}

int32_t grf_trt_blob_destroy(grf_trt_blob* blob, char* err, size_t errlen) {
  return guard(err, errlen, [&] { delete blob; });
}

}  // extern "C"
