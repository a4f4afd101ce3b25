// grefine.hpp — header-only C++17 wrapper of libgrefine (grefine.h).
//
// RAII, move-only handles over the C API; every failing call throws grefine::error, which
// carries the grefine_status and the library's message. Nothing here adds behaviour: each
// method is one C call. The rules of grefine.h (threading, the Go runtime, ownership) apply
// unchanged; in particular a pipeline is safe to use from many threads, and callbacks must
// not throw (an exception escaping a progress callback is caught and cancels the call).
//
//   grefine::options o;  o.models = "models/real";
//   grefine::pipeline p(o);
//   grefine::image img = p.decode(png_bytes);
//   grefine::params pr;  pr.seed = 7;
//   grefine::refinement r = p.refine(img.view(), "a red cat", pr);
//   std::vector<uint8_t> png = grefine::encode_png(r.image());
#ifndef GREFINE_HPP
#define GREFINE_HPP

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "grefine.h"

namespace grefine {

// error is a failed call: status() is the grefine_status, what() the library's message.
class error : public std::runtime_error {
 public:
  error(grefine_status status, const std::string &message)
      : std::runtime_error(message.empty() ? std::string(grefine_status_string(status)) : message), status_(status) {}
  grefine_status status() const noexcept { return status_; }

 private:
  grefine_status status_;
};

namespace detail {
constexpr std::size_t errlen = 1024;
inline void check(grefine_status st, const char *err) {
  if (st != GREFINE_OK) throw error(st, err);
}
template <typename T, grefine_status (*Free)(T *)>
class owned {
 public:
  owned() noexcept = default;
  explicit owned(T *p) noexcept : p_(p) {}
  owned(owned &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  owned &operator=(owned &&o) noexcept {
    if (this != &o) reset(std::exchange(o.p_, nullptr));
    return *this;
  }
  owned(const owned &) = delete;
  owned &operator=(const owned &) = delete;
  ~owned() { reset(nullptr); }
  T *get() const noexcept { return p_; }
  T *release() noexcept { return std::exchange(p_, nullptr); }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  void reset(T *p) noexcept {
    if (p_) Free(p_);
    p_ = p;
  }
  T *p_ = nullptr;
};
}  // namespace detail

// The ABI check every program should make once: throws when the library's ABI is not the
// header's.
inline void check_abi() {
  if (grefine_abi_version() != GREFINE_ABI_VERSION)
    throw error(GREFINE_ERR_UNAVAILABLE, "libgrefine ABI " + std::to_string(grefine_abi_version()) +
                                             " does not match grefine.h's " + std::to_string(GREFINE_ABI_VERSION));
}

inline std::string version() { return grefine_version(); }

// options: grefine_options with its defaults (strings are borrowed by the constructor of
// pipeline only).
struct options : grefine_options {
  options() noexcept : grefine_options() { grefine_options_init(this); }
};

// progress_fn: stage, step, total; return false to cancel.
using progress_fn = std::function<bool(std::string_view stage, int step, int total)>;

// params: grefine_params with its defaults. request_id points into the std::string id
// when set through set_request_id.
struct params : grefine_params {
  params() noexcept : grefine_params() { grefine_params_init_sized(this, sizeof(grefine_params)); }
  params(const params &o) : grefine_params(o), id_(o.id_) { fix_id(); }
  params &operator=(const params &o) {
    grefine_params::operator=(o);
    id_ = o.id_;
    fix_id();
    return *this;
  }
  void set_request_id(std::string id) {
    id_ = std::move(id);
    has_id_ = true;
    request_id = id_.c_str();
  }

 private:
  void fix_id() {
    if (has_id_) request_id = id_.c_str();
  }
  std::string id_;
  bool has_id_ = false;
};

// image: an owned decoded image (grefine_image_decode). view() lends it to calls.
class image {
 public:
  image() noexcept = default;
  explicit image(grefine_image *p) noexcept : p_(p) {}
  const grefine_image &view() const noexcept { return *p_.get(); }
  int width() const noexcept { return p_.get()->width; }
  int height() const noexcept { return p_.get()->height; }

 private:
  detail::owned<grefine_image, grefine_image_free> p_;
};

// A borrowed view of packed RGB8 pixels (stride 3*width).
inline grefine_image view_rgb(const uint8_t *rgb, int width, int height) {
  grefine_image v;
  v.width = width;
  v.height = height;
  v.stride = 3 * width;
  v.rgb = rgb;
  return v;
}

// assessment: an owned grefine_assessment; get() exposes every field.
class assessment {
 public:
  assessment() noexcept = default;
  explicit assessment(grefine_assessment *p) noexcept : p_(p) {}
  const grefine_assessment &get() const noexcept { return *p_.get(); }
  const grefine_assessment *operator->() const noexcept { return p_.get(); }
  std::string_view report_json() const noexcept { return p_.get()->report_json; }
  std::string request_id() const { return p_.get()->request_id; }

 private:
  detail::owned<grefine_assessment, grefine_assessment_free> p_;
};

// refinement: an owned grefine_refinement (its assessment and image included).
class refinement {
 public:
  refinement() noexcept = default;
  explicit refinement(grefine_refinement *p) noexcept : p_(p) {}
  const grefine_refinement &get() const noexcept { return *p_.get(); }
  const grefine_refinement *operator->() const noexcept { return p_.get(); }
  const grefine_image &image() const noexcept { return p_.get()->image; }
  const grefine_assessment &assessment() const noexcept { return *p_.get()->assessment; }
  std::string_view report_json() const noexcept { return p_.get()->report_json; }
  std::string request_id() const { return p_.get()->request_id; }

 private:
  detail::owned<grefine_refinement, grefine_refinement_free> p_;
};

// encode_png: PNG bytes of an image with the CLI's and server's encoder.
inline std::vector<uint8_t> encode_png(const grefine_image &img) {
  char err[detail::errlen];
  uint8_t *buf = nullptr;
  std::size_t n = 0;
  detail::check(grefine_encode_png(&img, &buf, &n, err, sizeof err), err);
  std::vector<uint8_t> out(buf, buf + n);
  grefine_free(buf);
  return out;
}

// pipeline: an open grefine_pipeline (closed by the destructor). Move-only; safe to use
// from many threads at once (do not move or destroy it while calls are in flight).
class pipeline {
 public:
  explicit pipeline(const grefine_options &opts) {
    char err[detail::errlen];
    grefine_pipeline *p = nullptr;
    detail::check(grefine_open(&opts, &p, err, sizeof err), err);
    p_ = p;
  }
  pipeline(pipeline &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  pipeline &operator=(pipeline &&o) noexcept {
    if (this != &o) {
      grefine_close(p_);
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  pipeline(const pipeline &) = delete;
  pipeline &operator=(const pipeline &) = delete;
  ~pipeline() { grefine_close(p_); }

  grefine_pipeline *handle() const noexcept { return p_; }

  std::string info() const {
    char err[detail::errlen];
    char *js = nullptr;
    detail::check(grefine_info(p_, &js, err, sizeof err), err);
    std::string out(js);
    grefine_free(js);
    return out;
  }

  image decode(const std::vector<uint8_t> &data) const {
    char err[detail::errlen];
    grefine_image *img = nullptr;
    detail::check(grefine_image_decode(p_, data.data(), data.size(), &img, err, sizeof err), err);
    return image(img);
  }

  assessment assess(const grefine_image &img, const std::string &prompt, const params &pr = params(),
                    progress_fn progress = nullptr) const {
    return run<assessment, grefine_assessment>(grefine_assess, img, prompt, pr, std::move(progress));
  }

  refinement refine(const grefine_image &img, const std::string &prompt, const params &pr = params(),
                    progress_fn progress = nullptr) const {
    return run<refinement, grefine_refinement>(grefine_refine, img, prompt, pr, std::move(progress));
  }

  // cancel: true if a call with that request id was in flight. Safe from any thread.
  bool cancel(const std::string &request_id) const noexcept { return grefine_cancel(p_, request_id.c_str()) != 0; }

 private:
  // call binds a std::function progress callback to the C one for one call.
  struct call {
    call(const params &pr, progress_fn f) : p(pr), fn(std::move(f)) {
      if (fn) {
        p.progress = &call::trampoline;
        p.progress_user = this;
      }
    }
    static int trampoline(void *user, const char *stage, int step, int total) {
      auto *c = static_cast<call *>(user);
      try {
        return c->fn(stage, step, total) ? 0 : 1;
      } catch (...) {
        c->thrown = std::current_exception();
        return 1;
      }
    }
    void rethrow() {
      if (thrown) std::rethrow_exception(thrown);
    }
    params p;
    progress_fn fn;
    std::exception_ptr thrown;
  };
  template <typename Out, typename C, typename Fn>
  Out run(Fn fn, const grefine_image &img, const std::string &prompt, const params &pr, progress_fn progress) const {
    char err[detail::errlen];
    C *res = nullptr;
    call c(pr, std::move(progress));
    grefine_status st = fn(p_, &img, prompt.c_str(), &c.p, &res, err, sizeof err);
    Out out(res);  // owned before anything can throw
    c.rethrow();
    detail::check(st, err);
    return out;
  }
  grefine_pipeline *p_ = nullptr;
};

}  // namespace grefine

#endif  // GREFINE_HPP
