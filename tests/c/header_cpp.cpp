// grefine.h and grefine.hpp compile as C++17 (-Wall -Wextra -pedantic -Werror); the
// wrapper's handles are move-only and its errors carry the status and message.
#include "grefine.hpp"

#include <cstdio>
#include <cstring>
#include <type_traits>

static_assert(!std::is_copy_constructible_v<grefine::pipeline>, "pipeline is move-only");
static_assert(std::is_nothrow_move_constructible_v<grefine::pipeline>, "pipeline moves");
static_assert(!std::is_copy_constructible_v<grefine::assessment>, "assessment is move-only");
static_assert(!std::is_copy_constructible_v<grefine::refinement>, "refinement is move-only");
static_assert(!std::is_copy_constructible_v<grefine::image>, "image is move-only");
static_assert(std::is_nothrow_move_assignable_v<grefine::refinement>, "refinement moves");

int main(int argc, char **argv) {
  int failures = 0;
  grefine::check_abi();
  grefine::options o;
  o.models = "/nonexistent/grefine-models";
  try {
    grefine::pipeline p(o);
    std::fprintf(stderr, "header_cpp: open of a missing model set did not throw\n");
    failures++;
  } catch (const grefine::error &e) {
    if (e.status() != GREFINE_ERR_UNAVAILABLE || std::strlen(e.what()) == 0) {
      std::fprintf(stderr, "header_cpp: status %d: %s\n", (int)e.status(), e.what());
      failures++;
    }
  }
  if (argc > 1) {  // the tiny set: a move, a progress callback that throws, an assessment
    o.models = argv[1];
    o.assess_only = 1;
    grefine::pipeline p0(o);
    grefine::pipeline p = std::move(p0);
    if (p0.handle() != nullptr) failures++;
    std::vector<uint8_t> px(3 * 96 * 64, 128);
    grefine_image img = grefine::view_rgb(px.data(), 96, 64);
    grefine::params pr;
    pr.set_request_id("cpp-1");
    grefine::params copy = pr;  // the copy's request_id points into its own string
    try {
      p.assess(img, "a grey square", copy, [](std::string_view, int, int) -> bool { throw std::runtime_error("boom"); });
      failures++;
    } catch (const std::runtime_error &e) {
      if (std::strcmp(e.what(), "boom") != 0) failures++;
    }
    grefine::assessment a = p.assess(img, "a grey square", copy);
    if (a.request_id() != "cpp-1" || a.report_json().empty() || a->width != 96) failures++;
    grefine::assessment b = std::move(a);
    if (b->height != 64) failures++;
    std::vector<uint8_t> png = grefine::encode_png(img);
    grefine::image back = p.decode(png);
    if (back.width() != 96 || std::memcmp(back.view().rgb, px.data(), px.size()) != 0) failures++;
  }
  if (failures) {
    std::fprintf(stderr, "header_cpp: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("header_cpp: ok\n");
  return 0;
}
