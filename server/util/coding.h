// coding.h — fixed-width little-endian integers for on-disk values.
//
//   std::string v(8, '\0');
//   PutFixed64(v.data(), 42);
//   uint64_t back = GetFixed64(v.data());  // 42, on any host byte order

#ifndef IDEMKEY_SERVER_UTIL_CODING_H_
#define IDEMKEY_SERVER_UTIL_CODING_H_

#include <cstdint>
#include <string>

namespace idemkey::util {

inline void PutFixed64(char* dst, uint64_t v) {
  for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}

inline uint64_t GetFixed64(const char* src) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v |= uint64_t{static_cast<uint8_t>(src[i])} << (8 * i);
  }
  return v;
}

inline std::string EncodeFixed64(uint64_t v) {
  std::string out(8, '\0');
  PutFixed64(out.data(), v);
  return out;
}

}  // namespace idemkey::util

#endif  // IDEMKEY_SERVER_UTIL_CODING_H_
