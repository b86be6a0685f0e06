// temp_dir.h — a fresh directory under $TMPDIR (or /tmp), removed with the
// object.
//
//   TempDir dir;
//   std::string data = dir.path() + "/data";

#ifndef IDEMKEY_TESTS_SUPPORT_TEMP_DIR_H_
#define IDEMKEY_TESTS_SUPPORT_TEMP_DIR_H_

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace idemkey::testing {

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr ? base : "/tmp") + "/idemkey-test-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("mkdtemp failed for " + tmpl);
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_TEMP_DIR_H_
