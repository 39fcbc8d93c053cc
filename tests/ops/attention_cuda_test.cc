// attention_forward / attention_backward on CUDA (the training kernels) against the CPU op: odd sizes and
// BERT-base's heads, ragged padding masks (a sequence with holes, one cut short, one all padding), with and
// without a dropout keep mask. Outputs are poisoned with NaN first (every element must be written).
// Tolerance: fp32 1e-5, relative to each element and to the largest |ref| of the tensor (sums over T keys in
// another order). Exact: padded keys have probability 0, the all-padding sequence the uniform 1/T and no
// gradient to q, k.
#include "ops/attention.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "ops/cuda_op_test_util.h"

namespace nlpf::test {
namespace {

constexpr double kTol = 1e-5;

class AttentionCuda : public CudaOpTest {};

Tensor keep_mask(std::mt19937& rng, const Shape& shape, double p) {
  std::bernoulli_distribution kept(1 - p);
  Tensor keep = Tensor::empty(DType::F32, shape);
  for (int64_t i = 0; i < keep.numel(); ++i) keep.data<float>()[i] = kept(rng) ? 1.0f : 0.0f;
  return keep;
}

struct Size {
  int64_t B, T, NH, HS;
};

// The two forms of the products: IEEE fp32 reads the operands in place through pointer arrays (within
// kTol); TF32 copies them head-major for strided batches (TF32 products: within 1e-2, which still catches any
// misplaced head or row).
struct ModeCase {
  MathMode mode;
  double tol;
  const char* name;
};
constexpr ModeCase kModes[] = {{MathMode::IEEE_FP32, kTol, "ieee (pointer arrays)"},
                               {MathMode::TF32, 1e-2, "tf32 (head-major copies)"}};

TEST_F(AttentionCuda, ForwardAndBackwardMatchCpu) {
  std::mt19937 rng(1101);
  // BERT-base's heads (T 128, NH 12, HS 64: the vector copies and aligned GEMMs), odd sizes (unaligned
  // batch strides, scalar copies), and T = 1 with one and with several heads.
  for (const ModeCase& m : kModes) {
    gpu().set_math_mode(m.mode);
    const double tol = m.tol;
    for (const Size s :
         {Size{3, 19, 3, 8}, Size{3, 67, 2, 40}, Size{2, 1, 1, 3}, Size{3, 1, 4, 8}, Size{3, 128, 12, 64}}) {
      for (const bool with_dropout : {false, true}) {
        SCOPED_TRACE(std::string(m.name) + " B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                     " NH=" + std::to_string(s.NH) + " HS=" + std::to_string(s.HS) +
                     (with_dropout ? " dropout" : ""));
        const int64_t C = s.NH * s.HS;
        const Shape x_shape{s.B, s.T, C}, p_shape{s.B, s.NH, s.T, s.T};
        const Tensor q = random_tensor(rng, x_shape, -2, 2), k = random_tensor(rng, x_shape, -2, 2),
                     v = random_tensor(rng, x_shape), dout = random_tensor(rng, x_shape);
        const Tensor mask = ragged_mask(rng, s.B, s.T);
        const Tensor keep = keep_mask(rng, p_shape, 0.1);
        const Tensor keep_d = device(keep);
        const ops::AttentionDropout cpu_dropout =
            with_dropout ? ops::AttentionDropout{&keep, 0.1} : ops::AttentionDropout{};
        const ops::AttentionDropout gpu_dropout =
            with_dropout ? ops::AttentionDropout{&keep_d, 0.1} : ops::AttentionDropout{};

        Tensor ref_out = Tensor::empty(DType::F32, x_shape), ref_probs = Tensor::empty(DType::F32, p_shape);
        ops::attention_forward(cpu_context(), ref_out, ref_probs, q, k, v, mask, s.NH, cpu_dropout);
        const Tensor q_d = device(q), k_d = device(k), v_d = device(v), mask_d = device(mask);
        Tensor out = poisoned(x_shape), probs = poisoned(p_shape);
        ops::attention_forward(gpu(), out, probs, q_d, k_d, v_d, mask_d, s.NH, gpu_dropout);
        const std::vector<double> expected_out = to_double(ref_out), expected_probs = to_double(ref_probs);
        const std::vector<double> got_probs = values(probs);
        EXPECT_TRUE(all_close(values(out), expected_out, scaled_tolerance(tol, expected_out)));
        EXPECT_TRUE(all_close(got_probs, expected_probs, Tolerance{tol, tol == kTol ? 1e-6 : tol}));
        // Exact zeros for padded keys, the exact uniform row for the all-padding sequence.
        for (int64_t b = 0; b < s.B; ++b) {
          for (int64_t i = 0; i < s.NH * s.T * s.T; ++i) {
            const int64_t key = i % s.T, at = b * s.NH * s.T * s.T + i;
            if (b == s.B - 1) {
              ASSERT_EQ(got_probs[at], static_cast<double>(static_cast<float>(1.0 / s.T)))
                  << "probs[" << at << "]";
            } else if (mask.data<int32_t>()[b * s.T + key] == 0) {
              ASSERT_EQ(got_probs[at], 0.0) << "probs[" << at << "]";
            }
          }
        }

        // Backward from the CPU's probabilities on both devices, so that only the backward is compared.
        Tensor ref_dq = Tensor::empty(DType::F32, x_shape), ref_dk = Tensor::empty(DType::F32, x_shape),
               ref_dv = Tensor::empty(DType::F32, x_shape);
        ops::attention_backward(cpu_context(), ref_dq, ref_dk, ref_dv, dout, q, k, v, mask, ref_probs, s.NH,
                                cpu_dropout);
        Tensor dq = poisoned(x_shape), dk = poisoned(x_shape), dv = poisoned(x_shape);
        ops::attention_backward(gpu(), dq, dk, dv, device(dout), q_d, k_d, v_d, mask_d, device(ref_probs),
                                s.NH, gpu_dropout);
        const std::vector<double> expected_dq = to_double(ref_dq), expected_dk = to_double(ref_dk),
                                  expected_dv = to_double(ref_dv);
        const std::vector<double> got_dq = values(dq), got_dk = values(dk);
        // dq and dk are differences of nearly equal terms (dp - rowsum(p dp)), exactly 0 in a row with one
        // key: their error scales with the terms, which dv's size measures, not with their own (tiny) size.
        const double scale =
            std::max(largest_abs(expected_dv), std::max(largest_abs(expected_dq), largest_abs(expected_dk)));
        EXPECT_TRUE(all_close(got_dq, expected_dq, Tolerance{tol, tol * scale}));
        EXPECT_TRUE(all_close(got_dk, expected_dk, Tolerance{tol, tol * scale}));
        EXPECT_TRUE(all_close(values(dv), expected_dv, scaled_tolerance(tol, expected_dv)));
        // No gradient to q, k of the all-padding sequence (the last).
        for (int64_t i = (s.B - 1) * s.T * C; i < s.B * s.T * C; ++i) {
          ASSERT_EQ(got_dq[i], 0.0) << "dq[" << i << "]";
          ASSERT_EQ(got_dk[i], 0.0) << "dk[" << i << "]";
        }
      }
    }
  }
}

TEST_F(AttentionCuda, DrawnDropoutEqualsTheStoredMaskBitForBit) {
  // The softmax kernels drawing the dropout mask themselves (the step read from device memory, as a captured
  // training step reads it) against the same kernels reading the mask dropout_mask wrote for that draw: the
  // same bits out, dq, dk, dv; and against the CPU within the op's tolerance.
  std::mt19937 rng(1103);
  const int64_t B = 3, T = 37, NH = 3, HS = 16, C = NH * HS;
  const Shape x_shape{B, T, C}, p_shape{B, NH, T, T};
  const Tensor q = random_tensor(rng, x_shape, -2, 2), k = random_tensor(rng, x_shape, -2, 2),
               v = random_tensor(rng, x_shape), dout = random_tensor(rng, x_shape),
               mask = ragged_mask(rng, B, T);
  const uint64_t offset = 4 * 1025, stride = uint64_t{1} << 42;
  Tensor step = poisoned({1}, DType::I64);
  Tensor host_step = Tensor::empty(DType::I64, {1});
  host_step.data<int64_t>()[0] = 12;
  copy_tensor(gpu(), step, host_step);
  const ops::DropoutDraw draw{5, offset, step.data<int64_t>(), stride};
  Tensor keep = poisoned(p_shape);
  ops::dropout_mask(gpu(), keep, 0.1, 5, offset, step.data<int64_t>(), stride);
  const Tensor q_d = device(q), k_d = device(k), v_d = device(v), mask_d = device(mask),
               dout_d = device(dout);
  const auto run = [&](const ops::AttentionDropout& dropout) {
    Tensor out = poisoned(x_shape), probs = poisoned(p_shape);
    ops::attention_forward(gpu(), out, probs, q_d, k_d, v_d, mask_d, NH, dropout);
    Tensor dq = poisoned(x_shape), dk = poisoned(x_shape), dv = poisoned(x_shape);
    ops::attention_backward(gpu(), dq, dk, dv, dout_d, q_d, k_d, v_d, mask_d, probs, NH, dropout);
    return std::vector<Tensor>{to_host(gpu(), out), to_host(gpu(), dq), to_host(gpu(), dk),
                               to_host(gpu(), dv)};
  };
  const std::vector<Tensor> drawn = run({nullptr, 0.1, &draw}), stored = run({&keep, 0.1});
  for (size_t i = 0; i < drawn.size(); ++i) EXPECT_TRUE(bit_identical(drawn[i], stored[i])) << "output " << i;
  const int64_t host_step_value = 12;
  const ops::DropoutDraw cpu_draw{5, offset, &host_step_value, stride};
  Tensor ref_out = Tensor::empty(DType::F32, x_shape), ref_probs = Tensor::empty(DType::F32, p_shape);
  ops::attention_forward(cpu_context(), ref_out, ref_probs, q, k, v, mask, NH, {nullptr, 0.1, &cpu_draw});
  const std::vector<double> expected_out = to_double(ref_out);
  EXPECT_TRUE(all_close(to_double(drawn[0]), expected_out, scaled_tolerance(kTol, expected_out)));
}

// The packed ops read q, k, v from (and write dq, dk, dv into) one [B,T,3C] tensor at a row stride of 3C,
// with dropout drawn. TF32: the same bits as the three-part ops (the same head-major copies feed the same
// GEMMs; vector copies where HS and 3C are multiples of 4, scalar ones elsewhere). IEEE fp32: the
// pointer-array products read each layout in place, and cuBLASLt may choose another algorithm for another row
// stride, so within kTol of the three-part results.
TEST_F(AttentionCuda, PackedEqualsThreeParts) {
  std::mt19937 rng(1104);
  for (const ModeCase& m : kModes) {
    gpu().set_math_mode(m.mode);
    const bool bits = m.mode == MathMode::TF32;
    for (const Size s : {Size{3, 19, 3, 8}, Size{3, 67, 2, 40}, Size{2, 5, 3, 3}, Size{4, 40, 12, 32}}) {
      SCOPED_TRACE(std::string(m.name) + " B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                   " NH=" + std::to_string(s.NH) + " HS=" + std::to_string(s.HS));
      const int64_t C = s.NH * s.HS;
      const Shape x_shape{s.B, s.T, C}, p_shape{s.B, s.NH, s.T, s.T};
      const Tensor qkv = random_tensor(rng, {s.B, s.T, 3 * C}, -2, 2), dout = random_tensor(rng, x_shape);
      const auto part = [&](int64_t i) {
        Tensor p = Tensor::empty(DType::F32, x_shape);
        for (int64_t row = 0; row < s.B * s.T; ++row) {
          std::copy_n(qkv.data<float>() + row * 3 * C + i * C, C, p.data<float>() + row * C);
        }
        return device(p);
      };
      const Tensor q = part(0), k = part(1), v = part(2), qkv_d = device(qkv), dout_d = device(dout);
      const Tensor mask = device(ragged_mask(rng, s.B, s.T));
      Tensor host_step = Tensor::empty(DType::I64, {1});
      host_step.data<int64_t>()[0] = 5;
      const Tensor step =
          to_device(gpu(), host_step);  // read from device memory, as a captured step reads it
      const ops::DropoutDraw draw{91, 8, step.data<int64_t>(), uint64_t{1} << 42};
      const ops::AttentionDropout dropout{nullptr, 0.1, &draw};

      Tensor out = poisoned(x_shape), probs = poisoned(p_shape);
      ops::attention_forward(gpu(), out, probs, q, k, v, mask, s.NH, dropout);
      Tensor dq = poisoned(x_shape), dk = poisoned(x_shape), dv = poisoned(x_shape);
      ops::attention_backward(gpu(), dq, dk, dv, dout_d, q, k, v, mask, probs, s.NH, dropout);

      Tensor packed_out = poisoned(x_shape), packed_probs = poisoned(p_shape);
      ops::attention_forward_packed(gpu(), packed_out, packed_probs, qkv_d, mask, s.NH, dropout);
      Tensor dqkv = poisoned({s.B, s.T, 3 * C});
      ops::attention_backward_packed(gpu(), dqkv, dout_d, qkv_d, mask, packed_probs, s.NH, dropout);
      const auto same = [&](const Tensor& got, const Tensor& want) {
        if (bits) return bit_identical(got, want);
        const std::vector<double> expected = to_double(want);
        return all_close(to_double(got), expected, scaled_tolerance(kTol, expected));
      };
      EXPECT_TRUE(same(to_host(gpu(), packed_out), to_host(gpu(), out)));
      EXPECT_TRUE(same(to_host(gpu(), packed_probs), to_host(gpu(), probs)));
      const Tensor got = to_host(gpu(), dqkv);
      const Tensor parts[3] = {to_host(gpu(), dq), to_host(gpu(), dk), to_host(gpu(), dv)};
      for (int64_t i = 0; i < 3; ++i) {
        Tensor packed_part = Tensor::empty(DType::F32, x_shape);
        for (int64_t row = 0; row < s.B * s.T; ++row) {
          std::copy_n(got.data<float>() + row * 3 * C + i * C, C, packed_part.data<float>() + row * C);
        }
        EXPECT_TRUE(same(packed_part, parts[i])) << "part " << i;
      }
    }
  }
}

TEST_F(AttentionCuda, LongSequenceMatchesCpu) {
  // T = 512 (BERT's longest) with BERT-base's head size: the largest score matrices per head, the last
  // length whose softmax rows stay in registers; T = 520 takes the row kernels that walk rows in memory.
  for (const int64_t T : {512, 520}) {
    SCOPED_TRACE("T = " + std::to_string(T));
    std::mt19937 rng(1102);
    const int64_t B = 2, NH = 2, HS = 64, C = NH * HS;
    const Shape x_shape{B, T, C}, p_shape{B, NH, T, T};
    const Tensor q = random_tensor(rng, x_shape), k = random_tensor(rng, x_shape),
                 v = random_tensor(rng, x_shape), dout = random_tensor(rng, x_shape),
                 mask = ragged_mask(rng, B, T);
    Tensor ref_out = Tensor::empty(DType::F32, x_shape), ref_probs = Tensor::empty(DType::F32, p_shape);
    ops::attention_forward(cpu_context(), ref_out, ref_probs, q, k, v, mask, NH);
    Tensor out = poisoned(x_shape), probs = poisoned(p_shape);
    const Tensor q_d = device(q), k_d = device(k), v_d = device(v), mask_d = device(mask);
    ops::attention_forward(gpu(), out, probs, q_d, k_d, v_d, mask_d, NH);
    const std::vector<double> expected_out = to_double(ref_out);
    EXPECT_TRUE(all_close(values(out), expected_out, scaled_tolerance(kTol, expected_out)));
    EXPECT_TRUE(all_close(values(probs), to_double(ref_probs), Tolerance{kTol, 1e-6}));

    Tensor ref_dq = Tensor::empty(DType::F32, x_shape), ref_dk = Tensor::empty(DType::F32, x_shape),
           ref_dv = Tensor::empty(DType::F32, x_shape);
    ops::attention_backward(cpu_context(), ref_dq, ref_dk, ref_dv, dout, q, k, v, mask, ref_probs, NH);
    Tensor dq = poisoned(x_shape), dk = poisoned(x_shape), dv = poisoned(x_shape);
    ops::attention_backward(gpu(), dq, dk, dv, device(dout), q_d, k_d, v_d, mask_d, device(ref_probs), NH);
    for (const auto& [got, ref] :
         {std::pair{&dq, &ref_dq}, std::pair{&dk, &ref_dk}, std::pair{&dv, &ref_dv}}) {
      const std::vector<double> expected = to_double(*ref);
      EXPECT_TRUE(all_close(values(*got), expected, scaled_tolerance(kTol, expected)));
    }
  }
}

TEST_F(AttentionCuda, BackwardIsDeterministic) {
  std::mt19937 rng(1103);
  const int64_t B = 3, T = 19, NH = 3, HS = 8;
  const Shape x_shape{B, T, NH * HS};
  const Tensor q = device(random_tensor(rng, x_shape)), k = device(random_tensor(rng, x_shape)),
               v = device(random_tensor(rng, x_shape)), dout = device(random_tensor(rng, x_shape)),
               mask = device(ragged_mask(rng, B, T));
  Tensor out = poisoned(x_shape), probs = poisoned({B, NH, T, T});
  ops::attention_forward(gpu(), out, probs, q, k, v, mask, NH);
  std::vector<double> first[3];
  for (int run = 0; run < 2; ++run) {
    Tensor dq = poisoned(x_shape), dk = poisoned(x_shape), dv = poisoned(x_shape);
    ops::attention_backward(gpu(), dq, dk, dv, dout, q, k, v, mask, probs, NH);
    const std::vector<double> got[3] = {values(dq), values(dk), values(dv)};
    for (int i = 0; i < 3; ++i) {
      if (run == 0) {
        first[i] = got[i];
      } else {
        EXPECT_EQ(got[i], first[i]) << "gradient " << i << " differs between two runs";
      }
    }
  }
}

}  // namespace
}  // namespace nlpf::test
