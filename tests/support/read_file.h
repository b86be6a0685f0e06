// read_file.h — a whole file as a string, for tests (a port file, a log, a
// DSN file).
//
//   std::string log = ReadFile(dir + "/server.log");

#ifndef IDEMKEY_TESTS_SUPPORT_READ_FILE_H_
#define IDEMKEY_TESTS_SUPPORT_READ_FILE_H_

#include <fstream>
#include <sstream>
#include <string>

namespace idemkey::testing {

// The file's bytes; empty when it cannot be read (not there yet).
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace idemkey::testing

#endif  // IDEMKEY_TESTS_SUPPORT_READ_FILE_H_
