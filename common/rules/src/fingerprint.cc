#include "idemkey/rules/fingerprint.h"

#include <openssl/evp.h>

#include <memory>

namespace idemkey::rules {

std::string Fingerprint(absl::string_view method, absl::string_view target,
                        absl::string_view body) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  for (absl::string_view part : {method, target, body}) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) {
      len[i] = static_cast<unsigned char>(part.size() >> (8 * i));
    }
    EVP_DigestUpdate(ctx.get(), len, sizeof len);
    EVP_DigestUpdate(ctx.get(), part.data(), part.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &size);
  return std::string(reinterpret_cast<const char*>(digest), size);
}

}  // namespace idemkey::rules
