// refine: G-Refine one image through libgrefine's C++ wrapper.
//
//   refine MODELS IMAGE PROMPT OUTDIR [SEED [STEPS1 STEPS2]]
//
// Writes OUTDIR/refined.png (the same bytes as `grefine refine` for the same inputs and
// seed) and OUTDIR/report.json (the pipeline's report, as the CLI's minus its file-only
// fields), and prints progress on stderr.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "grefine.hpp"

static std::vector<uint8_t> read_file(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

static void write_file(const std::string &path, const void *data, std::size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char *>(data), static_cast<std::streamsize>(n));
  if (!f) throw std::runtime_error("cannot write " + path);
}

int main(int argc, char **argv) {
  if (argc != 5 && argc != 6 && argc != 8) {
    std::cerr << "usage: refine MODELS IMAGE PROMPT OUTDIR [SEED [STEPS1 STEPS2]]\n";
    return 2;
  }
  try {
    grefine::check_abi();
    grefine::options opts;
    opts.models = argv[1];
    grefine::pipeline p(opts);
    grefine::image img = p.decode(read_file(argv[2]));
    grefine::params pr;
    if (argc >= 6) pr.seed = std::strtoull(argv[5], nullptr, 10);
    if (argc == 8) {
      pr.steps1 = std::atoi(argv[6]);
      pr.steps2 = std::atoi(argv[7]);
    }
    grefine::refinement r = p.refine(img.view(), argv[3], pr, [](std::string_view stage, int step, int total) {
      if (stage == "stage1" || stage == "stage2") std::cerr << stage << " " << step << "/" << total << "\n";
      return true;
    });
    std::string out = argv[4];
    std::vector<uint8_t> png = grefine::encode_png(r.image());
    write_file(out + "/refined.png", png.data(), png.size());
    write_file(out + "/report.json", r.report_json().data(), r.report_json().size());
    std::printf("q=%.4f stage1 %s (strength %.3f), stage2 %s (strength %.3f) -> %s/refined.png\n",
                r.assessment().q, r->stage1_ran ? "ran" : "skipped", r->stage1_strength,
                r->stage2_ran ? "ran" : "skipped", r->stage2_strength, out.c_str());
  } catch (const grefine::error &e) {
    std::cerr << "refine: " << grefine_status_string(e.status()) << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception &e) {
    std::cerr << "refine: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
