// latency_histogram.h — fixed-memory latency percentiles for benchmarks.
//
//   LatencyHistogram h;              // one per writer thread
//   h.Record(elapsed_ns);
//   total.Merge(h);                  // merged at the end
//   double p99_ns = total.Quantile(0.99);

#ifndef IDEMKEY_BENCH_LATENCY_HISTOGRAM_H_
#define IDEMKEY_BENCH_LATENCY_HISTOGRAM_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace idemkey::bench {

// Latency histogram with logarithmic buckets, HDR-style: values below 128 ns
// are exact; each power of two above is split into 64 buckets, so a value is
// known to within 1/64 (1.6%). Fixed memory, O(1) Record; one histogram per
// writer, merged at the end.
class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets, 0) {}

  void Record(uint64_t ns) {
    ++counts_[BucketOf(ns)];
    ++count_;
  }

  void Merge(const LatencyHistogram& other) {
    for (size_t b = 0; b < kBuckets; ++b) counts_[b] += other.counts_[b];
    count_ += other.count_;
  }

  uint64_t count() const { return count_; }

  // The latency within which a fraction q of the calls finished, in ns (the
  // middle of the bucket holding it); 0 when empty.
  double Quantile(double q) const {
    if (count_ == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(
        1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_))));
    uint64_t seen = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen >= rank) return Middle(b);
    }
    return Middle(kBuckets - 1);
  }

 private:
  static constexpr int kSubBits = 6;
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  // Shifts 0..57 (64 - kSubBits - 1), each with kSub buckets, plus the
  // first kSub exact values.
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;

  // Values v >> shift fall in [kSub, 2 * kSub) once shift > 0, so bucket
  // shift * kSub + (v >> shift) is contiguous with the previous shift's.
  static size_t BucketOf(uint64_t v) {
    const int bits = 64 - __builtin_clzll(v | 1);
    const int shift = std::max(0, bits - kSubBits - 1);
    return static_cast<size_t>(shift) * kSub + (v >> shift);
  }

  static double Middle(size_t bucket) {
    const uint64_t shift = bucket < 2 * kSub ? 0 : bucket / kSub - 1;
    const uint64_t mantissa = bucket - shift * kSub;
    const double low = std::ldexp(static_cast<double>(mantissa),
                                  static_cast<int>(shift));
    const double width = std::ldexp(1.0, static_cast<int>(shift));
    return low + (width - 1) / 2;
  }

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
};

}  // namespace idemkey::bench

#endif  // IDEMKEY_BENCH_LATENCY_HISTOGRAM_H_
