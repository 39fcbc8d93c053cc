// oneDNN matmul for bf16 x bf16 -> f32 (see bf16_gemm.h). One engine and stream per process; one primitive
// per (M, K, N, bias) shape, built on first use under a mutex (oneDNN primitives are thread-safe to execute).
// oneDNN here uses the OpenMP runtime, so it shares our thread pool instead of starting another.
#include "backend/cpu/bf16_gemm.h"

#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "backend/precision.h"
#include "core/error.h"

#if NLPF_WITH_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace nlpf::cpu {

std::optional<std::string> bf16_gemm_unavailable_reason() {
#if NLPF_WITH_ONEDNN
  if (!cpu_has_avx512_bf16()) return "this CPU lacks AVX512-BF16 instructions";
  return std::nullopt;
#else
  return "this build has no oneDNN (install libdnnl-dev and rebuild)";
#endif
}

#if NLPF_WITH_ONEDNN
namespace {

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::mutex mutex;
  std::map<std::tuple<int64_t, int64_t, int64_t, bool>, dnnl::matmul> primitives;
};

Context& context() {
  static Context instance;
  return instance;
}

}  // namespace
#endif

void linear_bf16(float* y, const uint16_t* x, const uint16_t* w, const float* bias, int64_t M, int64_t K,
                 int64_t N) {
  if (const std::optional<std::string> reason = bf16_gemm_unavailable_reason()) {
    NLPF_THROW(ErrorCode::UNSUPPORTED, "bf16 GEMM: ", *reason);
  }
#if NLPF_WITH_ONEDNN
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  Context& c = context();
  const dnnl::memory::desc src_md({M, K}, dt::bf16, tag::ab);
  const dnnl::memory::desc weights_md({K, N}, dt::bf16, tag::ba);  // [N,K] row-major seen as K x N
  const dnnl::memory::desc bias_md({1, N}, dt::f32, tag::ab);
  const dnnl::memory::desc dst_md({M, N}, dt::f32, tag::ab);
  dnnl::matmul primitive;
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    const auto key = std::make_tuple(M, K, N, bias != nullptr);
    auto it = c.primitives.find(key);
    if (it == c.primitives.end()) {
      const dnnl::matmul::desc desc = bias ? dnnl::matmul::desc(src_md, weights_md, bias_md, dst_md)
                                           : dnnl::matmul::desc(src_md, weights_md, dst_md);
      it = c.primitives.emplace(key, dnnl::matmul(dnnl::matmul::primitive_desc(desc, c.engine))).first;
    }
    primitive = it->second;
  }
  dnnl::memory src(src_md, c.engine, const_cast<uint16_t*>(x));
  dnnl::memory weights(weights_md, c.engine, const_cast<uint16_t*>(w));
  dnnl::memory dst(dst_md, c.engine, y);
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
  if (bias) args.emplace(DNNL_ARG_BIAS, dnnl::memory(bias_md, c.engine, const_cast<float*>(bias)));
  try {
    primitive.execute(c.stream, args);
    c.stream.wait();
  } catch (const dnnl::error& e) {
    NLPF_THROW(ErrorCode::INTERNAL, "oneDNN matmul [", M, ",", K, "] x [", K, ",", N, "]: ", e.what());
  }
#else
  (void)y, (void)x, (void)w, (void)bias, (void)M, (void)K, (void)N;
#endif
}

}  // namespace nlpf::cpu
