// gemm_algo_probe (issue 11, tf32 and fp32 inference): is there a cuBLASLt configuration of bert-base's four
// linear GEMMs faster than the ones the engine's autotune chooses from? The engine times the heuristic's
// first few results (backend/cuda/gemm.cu); this probe times, for the same nn.Linear form (y [M, N] = x [M,
// K] W^T, W stored [N, K]), three wider candidate sets:
//   heuristic   the heuristic's first 64 results (the engine's set at --autotune-candidates 64);
//   per_algo    for every algorithm id of the type (cublasLtMatmulAlgoGetIds), the heuristic limited to that
//   id
//               (CUBLASLT_SEARCH_LIMITED_BY_ALGO_ID), 16 results each;
//   configs     every algorithm id's tiles x stages x split-K (1, 2, 3, 4) x CTA swizzling, as its
//               capabilities list them, each accepted by cublasLtMatmulAlgoCheck, until a time budget a
//               shape.
// Every candidate: one launch to warm up, then 3 launches timed together with CUDA events (x random, 80% of
// its rows zero like SST-2's padded rows at 128; the time does not depend on the values). It prints, per
// shape and math mode, the fastest candidate of each set with its configuration and TFLOP/s, and the first
// heuristic result's time (the engine's heuristic choice). With --forms residual also (or only) the two
// 768-wide GEMMs as the f32 engine runs them, adding the residual: beta = 1 with C another [M, N] buffer
// (linear_residual_layer_norm_forward's GEMM). Usage: gemm_algo_probe [--rows M ...] [--modes tf32 fp32]
// [--forms plain residual] [--budget-seconds S] (default rows 4096 8192 32768, bert-base at batch 32/64/256 x
// 128; modes tf32 fp32; form plain; 6 s a shape). Exit 0 when it measured, 3 on a CUDA error.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace nlpf {
namespace {

struct Config {
  int algo_id = -1, tile = 0, stages = 0, split_k = 1, swizzle = 0, custom = 0;
};

Config config_of(const cublasLtMatmulAlgo_t& algo) {
  const auto get = [&](cublasLtMatmulAlgoConfigAttributes_t attr) {
    uint32_t value = 0;  // int32_t for CUBLASLT_ALGO_CONFIG_ID, of the same size
    size_t written = 0;
    NLPF_CUDA_CHECK(cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &value, sizeof value, &written));
    return static_cast<int>(value);
  };
  return Config{get(CUBLASLT_ALGO_CONFIG_ID),
                get(CUBLASLT_ALGO_CONFIG_TILE_ID),
                get(CUBLASLT_ALGO_CONFIG_STAGES_ID),
                get(CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                get(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
                get(CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION)};
}

struct Best {
  double ms = -1.0;
  Config config;
  int tried = 0;
};

class Probe {
 public:
  Probe(int64_t M, int64_t N, int64_t K, bool tf32, bool residual)
      : M_(M), N_(N), K_(K), tf32_(tf32), residual_(residual) {
    NLPF_CUDA_CHECK(cublasLtCreate(&lt_));
    NLPF_CUDA_CHECK(cudaStreamCreate(&stream_));
    NLPF_CUDA_CHECK(cudaEventCreate(&start_));
    NLPF_CUDA_CHECK(cudaEventCreate(&stop_));
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(M * K)), w(static_cast<size_t>(N * K));
    for (int64_t r = 0; r < M; ++r) {
      const bool padded = r % 5 != 0;  // 80% of the rows, as SST-2 dev (mean 25 tokens) padded to 128
      for (int64_t k = 0; k < K; ++k) x[static_cast<size_t>(r * K + k)] = padded ? 0.0f : u(rng);
    }
    for (float& v : w) v = u(rng) * 0.05f;
    NLPF_CUDA_CHECK(cudaMalloc(&x_, x.size() * sizeof(float)));
    NLPF_CUDA_CHECK(cudaMalloc(&w_, w.size() * sizeof(float)));
    NLPF_CUDA_CHECK(cudaMalloc(&y_, static_cast<size_t>(M * N) * sizeof(float)));
    if (residual_) {  // the residual's values do not change the time; zeros keep the sums finite
      NLPF_CUDA_CHECK(cudaMalloc(&c_, static_cast<size_t>(M * N) * sizeof(float)));
      NLPF_CUDA_CHECK(cudaMemset(c_, 0, static_cast<size_t>(M * N) * sizeof(float)));
    }
    NLPF_CUDA_CHECK(cudaMalloc(&workspace_, kWorkspace));
    NLPF_CUDA_CHECK(cudaMemcpy(x_, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice));
    NLPF_CUDA_CHECK(cudaMemcpy(w_, w.data(), w.size() * sizeof(float), cudaMemcpyHostToDevice));
    // The engine's column-major view: D' [N, M] = W'^T x', A = W stored [N, K] (K x N, transposed), B = x.
    NLPF_CUDA_CHECK(cublasLtMatmulDescCreate(&desc_, compute(), CUDA_R_32F));
    const cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
    NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t));
    NLPF_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof n));
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&a_, CUDA_R_32F, K, N, K));
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&b_, CUDA_R_32F, K, M, K));
    NLPF_CUDA_CHECK(cublasLtMatrixLayoutCreate(&d_, CUDA_R_32F, N, M, N));
  }
  ~Probe() {
    cublasLtMatrixLayoutDestroy(d_);
    cublasLtMatrixLayoutDestroy(b_);
    cublasLtMatrixLayoutDestroy(a_);
    cublasLtMatmulDescDestroy(desc_);
    cudaFree(workspace_);
    cudaFree(c_);
    cudaFree(y_);
    cudaFree(w_);
    cudaFree(x_);
    cudaEventDestroy(stop_);
    cudaEventDestroy(start_);
    cudaStreamDestroy(stream_);
    cublasLtDestroy(lt_);
  }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  cublasComputeType_t compute() const { return tf32_ ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F; }
  double tflops(double ms) const { return 2.0 * M_ * N_ * K_ / (ms * 1e-3) / 1e12; }

  // Up to `count` heuristic results (limited to `algo`'s id when given).
  std::vector<cublasLtMatmulAlgo_t> heuristic(int count, const cublasLtMatmulAlgo_t* algo = nullptr) {
    cublasLtMatmulPreference_t pref = nullptr;
    NLPF_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const size_t workspace = kWorkspace;
    NLPF_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                         &workspace, sizeof workspace));
    std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
    if (algo) {
      const uint32_t mode = CUBLASLT_SEARCH_LIMITED_BY_ALGO_ID;
      NLPF_CUDA_CHECK(
          cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_SEARCH_MODE, &mode, sizeof mode));
      for (auto& r : results) r.algo = *algo;
    }
    int found = 0;
    const cublasStatus_t status =
        cublasLtMatmulAlgoGetHeuristic(lt_, desc_, a_, b_, d_, d_, pref, count, results.data(), &found);
    NLPF_CUDA_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    std::vector<cublasLtMatmulAlgo_t> out;
    if (status != CUBLAS_STATUS_SUCCESS) return out;
    for (int i = 0; i < found; ++i) {
      if (results[static_cast<size_t>(i)].state == CUBLAS_STATUS_SUCCESS &&
          results[static_cast<size_t>(i)].workspaceSize <= kWorkspace) {
        out.push_back(results[static_cast<size_t>(i)].algo);
      }
    }
    return out;
  }

  std::vector<int> algo_ids() {
    std::vector<int> ids(256);
    int found = 0;
    NLPF_CUDA_CHECK(cublasLtMatmulAlgoGetIds(lt_, compute(), CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, CUDA_R_32F,
                                             CUDA_R_32F, static_cast<int>(ids.size()), ids.data(), &found));
    ids.resize(static_cast<size_t>(found));
    return ids;
  }

  bool init(int id, cublasLtMatmulAlgo_t* algo) {
    return cublasLtMatmulAlgoInit(lt_, compute(), CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, CUDA_R_32F, CUDA_R_32F,
                                  id, algo) == CUBLAS_STATUS_SUCCESS;
  }

  // Every configuration of algorithm id `id` its capabilities list (tiles x stages x split-K x swizzling)
  // that cublasLtMatmulAlgoCheck accepts within the workspace.
  std::vector<cublasLtMatmulAlgo_t> configs(int id) {
    std::vector<cublasLtMatmulAlgo_t> out;
    cublasLtMatmulAlgo_t algo{};
    if (!init(id, &algo)) return out;
    const auto cap_list = [&](cublasLtMatmulAlgoCapAttributes_t attr) {
      size_t bytes = 0;
      std::vector<uint32_t> values;
      if (cublasLtMatmulAlgoCapGetAttribute(&algo, attr, nullptr, 0, &bytes) != CUBLAS_STATUS_SUCCESS)
        return values;
      values.resize(bytes / sizeof(uint32_t));
      if (!values.empty())
        NLPF_CUDA_CHECK(cublasLtMatmulAlgoCapGetAttribute(&algo, attr, values.data(), bytes, &bytes));
      return values;
    };
    std::vector<uint32_t> tiles = cap_list(CUBLASLT_ALGO_CAP_TILE_IDS),
                          stages = cap_list(CUBLASLT_ALGO_CAP_STAGES_IDS);
    if (tiles.empty()) tiles.push_back(CUBLASLT_MATMUL_TILE_UNDEFINED);
    if (stages.empty()) stages.push_back(CUBLASLT_MATMUL_STAGES_UNDEFINED);
    int32_t split_support = 0, swizzle_support = 0;
    size_t written = 0;
    NLPF_CUDA_CHECK(cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &split_support,
                                                      sizeof split_support, &written));
    NLPF_CUDA_CHECK(cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_CTA_SWIZZLING_SUPPORT,
                                                      &swizzle_support, sizeof swizzle_support, &written));
    for (const uint32_t tile : tiles) {
      for (const uint32_t stage : stages) {
        for (uint32_t split = 1; split <= (split_support ? 4u : 1u); ++split) {
          for (uint32_t swizzle = 0; swizzle <= (swizzle_support ? 1u : 0u); ++swizzle) {
            cublasLtMatmulAlgo_t c = algo;
            const auto set = [&](cublasLtMatmulAlgoConfigAttributes_t attr, const uint32_t& value) {
              NLPF_CUDA_CHECK(cublasLtMatmulAlgoConfigSetAttribute(&c, attr, &value, sizeof value));
            };
            set(CUBLASLT_ALGO_CONFIG_TILE_ID, tile);
            set(CUBLASLT_ALGO_CONFIG_STAGES_ID, stage);
            set(CUBLASLT_ALGO_CONFIG_SPLITK_NUM, split);
            set(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, swizzle);
            if (split > 1) set(CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE);
            cublasLtMatmulHeuristicResult_t check{};
            if (cublasLtMatmulAlgoCheck(lt_, desc_, a_, b_, d_, d_, &c, &check) == CUBLAS_STATUS_SUCCESS &&
                check.workspaceSize <= kWorkspace) {
              out.push_back(c);
            }
          }
        }
      }
    }
    return out;
  }

  // Milliseconds a launch (3 timed after 1 untimed), or a negative value when the library refuses it.
  double time(const cublasLtMatmulAlgo_t& algo) {
    const float alpha = 1.0f, beta = residual_ ? 1.0f : 0.0f;
    const float* c = residual_ ? c_ : y_;
    const auto launch = [&] {
      return cublasLtMatmul(lt_, desc_, &alpha, w_, a_, x_, b_, &beta, c, d_, y_, d_, &algo, workspace_,
                            kWorkspace, stream_);
    };
    if (launch() != CUBLAS_STATUS_SUCCESS) return -1.0;
    constexpr int kRepeats = 3;
    NLPF_CUDA_CHECK(cudaEventRecord(start_, stream_));
    for (int r = 0; r < kRepeats; ++r) {
      if (launch() != CUBLAS_STATUS_SUCCESS) return -1.0;
    }
    NLPF_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    NLPF_CUDA_CHECK(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    NLPF_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
    return ms / kRepeats;
  }

  void consider(Best& best, const cublasLtMatmulAlgo_t& algo) {
    const double ms = time(algo);
    ++best.tried;
    if (ms > 0.0 && (best.ms < 0.0 || ms < best.ms)) {
      best.ms = ms;
      best.config = config_of(algo);
    }
  }

 private:
  static constexpr size_t kWorkspace = 32u << 20;
  int64_t M_, N_, K_;
  bool tf32_, residual_;
  cublasLtHandle_t lt_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  float *x_ = nullptr, *w_ = nullptr, *y_ = nullptr, *c_ = nullptr;
  void* workspace_ = nullptr;
};

void print(const char* mode, int64_t M, int64_t N, int64_t K, const char* set, const Best& b,
           const Probe& p) {
  if (b.ms < 0.0) {
    std::printf("%s M=%lld N=%lld K=%lld %-9s none of %d ran\n", mode, static_cast<long long>(M),
                static_cast<long long>(N), static_cast<long long>(K), set, b.tried);
    return;
  }
  std::printf(
      "%s M=%lld N=%lld K=%lld %-9s %8.1f us %6.1f TFLOP/s  algo %d tile %d stages %d split-k %d "
      "swizzle %d custom %d  (%d tried)\n",
      mode, static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), set, b.ms * 1e3,
      p.tflops(b.ms), b.config.algo_id, b.config.tile, b.config.stages, b.config.split_k, b.config.swizzle,
      b.config.custom, b.tried);
}

int run(int argc, char** argv) {
  std::vector<int64_t> rows = {4096, 8192, 32768};
  std::vector<std::string> modes = {"tf32", "fp32"}, forms = {"plain"};
  double budget = 6.0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--rows") {
      rows.clear();
      while (i + 1 < argc && argv[i + 1][0] != '-') rows.push_back(std::atoll(argv[++i]));
    } else if (arg == "--modes") {
      modes.clear();
      while (i + 1 < argc && argv[i + 1][0] != '-') modes.emplace_back(argv[++i]);
    } else if (arg == "--forms") {
      forms.clear();
      while (i + 1 < argc && argv[i + 1][0] != '-') forms.emplace_back(argv[++i]);
    } else if (arg == "--budget-seconds" && i + 1 < argc) {
      budget = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "gemm_algo_probe: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }
  const int64_t shapes[4][2] = {{2304, 768}, {768, 768}, {3072, 768}, {768, 3072}};  // (N, K): QKV, attn-out,
                                                                                     // intermediate, output
  std::vector<std::pair<std::string, bool>> runs;  // (math mode, with the residual)
  for (const std::string& mode : modes) {
    for (const std::string& form : forms) {
      if (form != "plain" && form != "residual") {
        std::fprintf(stderr, "gemm_algo_probe: unknown form %s (plain or residual)\n", form.c_str());
        return 2;
      }
      runs.emplace_back(mode, form == "residual");
    }
  }
  for (const auto& [mode, residual] : runs) {
    const std::string label = residual ? mode + "+residual" : mode;
    for (const int64_t M : rows) {
      for (const auto& nk : shapes) {
        const int64_t N = nk[0], K = nk[1];
        if (residual && N != 768) continue;  // BERT adds the residual after the two 768-wide GEMMs only
        Probe probe(M, N, K, mode == "tf32", residual);
        const std::vector<cublasLtMatmulAlgo_t> heuristic = probe.heuristic(64);
        Best first, heur, per_algo, configs;
        for (int warm = 0; warm < 3 && !heuristic.empty(); ++warm)
          probe.time(heuristic.front());  // clocks up
        if (!heuristic.empty()) probe.consider(first, heuristic.front());
        for (const auto& a : heuristic) probe.consider(heur, a);
        // The heuristic's algorithm ids first, so that the configs' budget goes to them before the others.
        std::vector<int> ids;
        for (const auto& a : heuristic) {
          const int id = config_of(a).algo_id;
          if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
        }
        for (const int id : probe.algo_ids()) {
          if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
        }
        for (const int id : ids) {
          cublasLtMatmulAlgo_t algo{};
          if (!probe.init(id, &algo)) continue;
          for (const auto& a : probe.heuristic(16, &algo)) probe.consider(per_algo, a);
        }
        const auto t0 = std::chrono::steady_clock::now();
        const auto elapsed = [&] {
          return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        };
        for (const int id : ids) {
          if (elapsed() > budget) break;
          for (const auto& a : probe.configs(id)) {
            if (elapsed() > budget) break;
            probe.consider(configs, a);
          }
        }
        print(label.c_str(), M, N, K, "first", first, probe);
        print(label.c_str(), M, N, K, "heuristic", heur, probe);
        print(label.c_str(), M, N, K, "per_algo", per_algo, probe);
        print(label.c_str(), M, N, K, "configs", configs, probe);
        std::printf("%s M=%lld N=%lld K=%lld algo ids %zu, configs budget %s\n", label.c_str(),
                    static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K),
                    ids.size(), elapsed() > budget ? "spent" : "not spent");
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace nlpf

int main(int argc, char** argv) {
  try {
    return nlpf::run(argc, argv);
  } catch (const nlpf::Error& e) {
    std::fprintf(stderr, "gemm_algo_probe: %s\n", e.what());
    return 3;
  }
}
