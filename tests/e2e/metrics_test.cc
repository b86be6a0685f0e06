// The Prometheus endpoint of a real idemkeyd (--metrics_listen): after a
// known sequence of calls the counters match it exactly, and every line of
// the scrape parses as the text exposition format (version 0.0.4).
//
//   MetricsTest fixture: idemkeyd with --metrics_listen=127.0.0.1:0
//   ParsedMetrics m = Scrape();               // fails the test if malformed
//   EXPECT_EQ(m.Get("idemkey_calls_total",
//                   {{"method", "Reserve"}, {"code", "OK"}}), 6);

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/metrics/exposition.h"
#include "tests/support/server_test.h"

namespace idemkey::testing {
namespace {

using idemkey::v1::OUTCOME_COMPLETED;
using idemkey::v1::OUTCOME_IN_PROGRESS;
using idemkey::v1::OUTCOME_MISMATCH;
using idemkey::v1::OUTCOME_OWNER;

using Labels = std::map<std::string, std::string>;

// --- A validating parser of the text exposition format -------------------

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct ParsedMetrics {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, std::string> helps;  // family -> help
  std::vector<Sample> samples;
  std::vector<std::string> errors;  // empty when the text is valid

  // The value of one series; nullopt when absent.
  std::optional<double> Find(const std::string& name,
                             const Labels& labels) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }
  double Get(const std::string& name, const Labels& labels = {}) const {
    std::optional<double> v = Find(name, labels);
    EXPECT_TRUE(v.has_value()) << "no series " << name << " " << Show(labels);
    return v.value_or(-1);
  }
  static std::string Show(const Labels& labels) {
    std::string out = "{";
    for (const auto& [k, v] : labels) out += k + "=\"" + v + "\",";
    return out + "}";
  }
};

bool IsMetricName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsLabelName(const std::string& s) {
  return IsMetricName(s) && s.find(':') == std::string::npos &&
         s.rfind("__", 0) != 0;
}

// A sample value: a Go ParseFloat number, or +Inf, -Inf, NaN.
std::optional<double> ParseValue(const std::string& s) {
  if (s == "+Inf" || s == "Inf") return HUGE_VAL;
  if (s == "-Inf") return -HUGE_VAL;
  if (s == "NaN") return std::nan("");
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// The family a sample name belongs to, given the declared types.
std::string FamilyOf(const std::string& name,
                     const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string sfx = suffix;
    if (name.size() > sfx.size() &&
        name.compare(name.size() - sfx.size(), sfx.size(), sfx) == 0) {
      const std::string base = name.substr(0, name.size() - sfx.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return name;
}

// Parses "name{labels} value [timestamp]" into `out`; false with `why`.
bool ParseSampleLine(const std::string& line, Sample* out, std::string* why) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  out->name = line.substr(0, i);
  if (!IsMetricName(out->name)) {
    *why = "bad metric name";
    return false;
  }
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t eq = line.find('=', i);
      if (eq == std::string::npos) {
        *why = "label without '='";
        return false;
      }
      const std::string name = line.substr(i, eq - i);
      if (!IsLabelName(name)) {
        *why = "bad label name \"" + name + "\"";
        return false;
      }
      i = eq + 1;
      if (i >= line.size() || line[i] != '"') {
        *why = "label value not quoted";
        return false;
      }
      ++i;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        const char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size()) break;
          const char e = line[i++];
          if (e == '\\') {
            value += '\\';
          } else if (e == '"') {
            value += '"';
          } else if (e == 'n') {
            value += '\n';
          } else {
            *why = std::string("bad escape \\") + e;
            return false;
          }
        } else if (c == '\n') {
          *why = "raw newline in label value";
          return false;
        } else {
          value += c;
        }
      }
      if (!closed) {
        *why = "unterminated label value";
        return false;
      }
      if (!out->labels.emplace(name, value).second) {
        *why = "label \"" + name + "\" repeated";
        return false;
      }
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) {
      *why = "unterminated label set";
      return false;
    }
    ++i;  // '}'
  }
  if (i >= line.size() || line[i] != ' ') {
    *why = "no space before the value";
    return false;
  }
  ++i;
  std::string rest = line.substr(i);
  std::string timestamp;
  if (size_t sp = rest.find(' '); sp != std::string::npos) {
    timestamp = rest.substr(sp + 1);
    rest = rest.substr(0, sp);
    char* end = nullptr;
    std::strtoll(timestamp.c_str(), &end, 10);
    if (timestamp.empty() || end != timestamp.c_str() + timestamp.size()) {
      *why = "bad timestamp";
      return false;
    }
  }
  std::optional<double> v = ParseValue(rest);
  if (!v) {
    *why = "bad value \"" + rest + "\"";
    return false;
  }
  out->value = *v;
  return true;
}

// Checks every line and every family; problems go to `errors`.
ParsedMetrics ParseExposition(const std::string& text) {
  ParsedMetrics m;
  auto fail = [&](size_t n, const std::string& line, const std::string& why) {
    m.errors.push_back("line " + std::to_string(n) + ": " + why + ": " + line);
  };
  if (!text.empty() && text.back() != '\n') {
    m.errors.push_back("the last line does not end with a newline");
  }
  std::set<std::string> finished;  // families whose samples have ended
  std::string current;             // family of the latest line
  std::set<std::string> series;
  size_t n = 0, pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++n;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::string rest = line.substr(1);
      if (rest.rfind(" HELP ", 0) == 0 || rest.rfind(" TYPE ", 0) == 0) {
        const bool help = rest[1] == 'H';
        rest = rest.substr(6);
        const size_t sp = rest.find(' ');
        const std::string name = rest.substr(0, sp);
        const std::string arg =
            sp == std::string::npos ? "" : rest.substr(sp + 1);
        if (!IsMetricName(name)) fail(n, line, "bad metric name");
        if (name != current) {
          if (!current.empty()) finished.insert(current);
          if (finished.count(name)) fail(n, line, "family split in two");
          current = name;
        }
        if (help) {
          if (!m.helps.emplace(name, arg).second) fail(n, line, "second HELP");
          for (size_t i = 0; i < arg.size(); ++i) {
            if (arg[i] == '\\' && (i + 1 >= arg.size() ||
                                   (arg[i + 1] != '\\' && arg[i + 1] != 'n'))) {
              fail(n, line, "bad escape in HELP");
            }
            if (arg[i] == '\\') ++i;
          }
        } else {
          static const std::set<std::string> kTypes = {
              "counter", "gauge", "histogram", "summary", "untyped"};
          if (!kTypes.count(arg)) fail(n, line, "unknown type");
          if (!m.types.emplace(name, arg).second) fail(n, line, "second TYPE");
          for (const Sample& s : m.samples) {
            if (FamilyOf(s.name, m.types) == name) {
              fail(n, line, "TYPE after samples of its family");
            }
          }
        }
      }
      continue;  // other comments are allowed
    }
    Sample s;
    std::string why;
    if (!ParseSampleLine(line, &s, &why)) {
      fail(n, line, why);
      continue;
    }
    const std::string family = FamilyOf(s.name, m.types);
    if (family != current) {
      if (!current.empty()) finished.insert(current);
      if (finished.count(family)) fail(n, line, "family split in two");
      current = family;
    }
    auto type = m.types.find(family);
    if (type == m.types.end()) {
      fail(n, line, "sample without TYPE");
    } else if (type->second == "counter") {
      if (!(s.value >= 0)) fail(n, line, "negative counter");
      if (s.name.size() < 6 ||
          s.name.compare(s.name.size() - 6, 6, "_total") != 0) {
        fail(n, line, "counter name without _total");
      }
    } else if (type->second == "histogram" && s.name == family) {
      fail(n, line, "histogram sample without _bucket/_sum/_count");
    }
    if ((s.name.size() > 7 && s.name.compare(s.name.size() - 7, 7, "_bucket") ==
                                  0) != (s.labels.count("le") > 0)) {
      if (type != m.types.end() && type->second == "histogram") {
        fail(n, line, "le label only and always on _bucket");
      }
    }
    if (!series.insert(s.name + ParsedMetrics::Show(s.labels)).second) {
      fail(n, line, "duplicate series");
    }
    m.samples.push_back(std::move(s));
  }

  // Histograms: per label set, le ascending ending at +Inf, cumulative counts
  // non-decreasing, +Inf bucket == _count, _sum present.
  for (const auto& [family, type] : m.types) {
    if (type != "histogram") continue;
    std::map<Labels, std::vector<std::pair<double, double>>> buckets;
    std::map<Labels, double> counts, sums;
    for (const Sample& s : m.samples) {
      Labels rest = s.labels;
      if (s.name == family + "_bucket") {
        const std::optional<double> le = ParseValue(rest["le"]);
        if (!le) m.errors.push_back(family + ": bad le " + rest["le"]);
        rest.erase("le");
        buckets[rest].emplace_back(le.value_or(0), s.value);
      } else if (s.name == family + "_count") {
        counts[rest] = s.value;
      } else if (s.name == family + "_sum") {
        sums[rest] = s.value;
      }
    }
    if (buckets.empty()) m.errors.push_back(family + ": no buckets");
    for (const auto& [labels, bs] : buckets) {
      const std::string where = family + ParsedMetrics::Show(labels);
      for (size_t i = 1; i < bs.size(); ++i) {
        if (!(bs[i].first > bs[i - 1].first)) {
          m.errors.push_back(where + ": le not ascending");
        }
        if (bs[i].second < bs[i - 1].second) {
          m.errors.push_back(where + ": bucket counts decrease");
        }
      }
      if (bs.empty() || !std::isinf(bs.back().first)) {
        m.errors.push_back(where + ": no le=\"+Inf\" bucket");
        continue;
      }
      if (!counts.count(labels) || counts[labels] != bs.back().second) {
        m.errors.push_back(where + ": _count differs from the +Inf bucket");
      }
      if (!sums.count(labels) || sums[labels] < 0) {
        m.errors.push_back(where + ": _sum missing or negative");
      }
    }
  }
  return m;
}

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// --- The parser itself: it must refuse what Prometheus refuses ------------

TEST(MetricsParserTest, AcceptsValidTextWithEscapes) {
  ParsedMetrics m = ParseExposition(
      "# HELP a_total Help with \\\\ and \\n.\n"
      "# TYPE a_total counter\n"
      "a_total{x=\"q\\\"uote\",y=\"back\\\\slash\\nnl\"} 1\n"
      "a_total 2 1700000000000\n"
      "# TYPE h histogram\n"
      "h_bucket{le=\"0.5\"} 1\n"
      "h_bucket{le=\"+Inf\"} 3\n"
      "h_sum 1.5e-3\n"
      "h_count 3\n"
      "# TYPE g gauge\n"
      "g NaN\n");
  EXPECT_TRUE(m.errors.empty()) << Joined(m.errors);
  EXPECT_EQ(m.Get("a_total", {{"x", "q\"uote"}, {"y", "back\\slash\nnl"}}), 1);
}

TEST(MetricsParserTest, RefusesMalformedText) {
  const char* bad[] = {
      "# TYPE a_total counter\na_total{x=\"1\"} 1",      // no \n
      "# TYPE a_total counter\na_total{x=\"\\t\"} 1\n",  // escape
      "# TYPE a_total counter\na_total{x=1} 1\n",        // unquoted
      "# TYPE a_total counter\na_total -1\n",            // negative
      "a_total 1\n",                                     // no TYPE
      "# TYPE a_total counter\na_total 1\na_total 2\n",  // duplicate
      "# TYPE a_total counter\na_total one\n",           // value
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"       // decreasing
      "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\n"  // count
      "h_sum 1\nh_count 3\n",
      "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n",
  };
  for (const char* text : bad) {
    EXPECT_FALSE(ParseExposition(text).errors.empty()) << text;
  }
}

// The server's writer escapes what the format requires; the parser reads
// back the exact label values and help text.
TEST(MetricsParserTest, ReadsBackWhatTheWriterEscapes) {
  const std::string nasty = "a\\b\"c\nd}{,=\\n";
  metrics::TextWriter out;
  out.Family("x_total", "counter", "Help \\ with\na newline.");
  out.Sample("x_total", {{"v", nasty}, {"w", ""}}, uint64_t{7});
  out.Family("y", "gauge", "Doubles.");
  out.Sample("y", {{"k", "1"}}, 0.1 + 0.2);
  out.Sample("y", {{"k", "2"}}, std::numeric_limits<double>::infinity());
  const std::string text = out.Take();
  ParsedMetrics m = ParseExposition(text);
  EXPECT_TRUE(m.errors.empty()) << Joined(m.errors) << text;
  EXPECT_EQ(m.Get("x_total", {{"v", nasty}, {"w", ""}}), 7) << text;
  EXPECT_EQ(m.Get("y", {{"k", "1"}}), 0.1 + 0.2) << text;  // exact
  EXPECT_TRUE(std::isinf(m.Get("y", {{"k", "2"}}))) << text;
  EXPECT_EQ(m.helps["x_total"], "Help \\\\ with\\na newline.") << text;
}

// --- idemkeyd's endpoint --------------------------------------------------

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::string s((std::istreambuf_iterator<char>(in)),
                std::istreambuf_iterator<char>());
  return s;
}

class MetricsTest : public ServerTest {
 protected:
  std::vector<std::string> ServerFlags() const override {
    return {"--metrics_listen=127.0.0.1:0",
            "--metrics_port_file=" + MetricsPortFile()};
  }
  std::string MetricsPortFile() const { return dir().path() + "/metrics.port"; }

  // GET /metrics; fails the test unless it is 200 and valid text format.
  ParsedMetrics Scrape() {
    const std::string port = ReadFile(MetricsPortFile());
    EXPECT_FALSE(port.empty()) << "no --metrics_port_file written";
    httplib::Client http("127.0.0.1", std::atoi(port.c_str()));
    http.set_read_timeout(30);
    httplib::Result res = http.Get("/metrics");
    if (!res) {
      ADD_FAILURE() << "GET /metrics failed: "
                    << httplib::to_string(res.error());
      return {};
    }
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"),
              "text/plain; version=0.0.4; charset=utf-8");
    last_text_ = res->body;
    ParsedMetrics m = ParseExposition(res->body);
    EXPECT_TRUE(m.errors.empty()) << Joined(m.errors) << "\n" << res->body;
    return m;
  }

  std::string last_text_;
};

TEST_F(MetricsTest, CountersMatchAKnownSequenceOfCalls) {
  // 3 Reserves own a new key.
  uint64_t token[3];
  for (int i = 0; i < 3; ++i) {
    auto r = client().Reserve(
        ReserveReq("acme", "k" + std::to_string(i), "body", "a1"));
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_EQ(r.reply.outcome(), OUTCOME_OWNER);
    token[i] = r.reply.fencing_token();
  }
  // 1 in progress (another attempt), 1 mismatch (another body).
  ASSERT_EQ(
      client().Reserve(ReserveReq("acme", "k0", "body", "a2")).reply.outcome(),
      OUTCOME_IN_PROGRESS);
  ASSERT_EQ(
      client().Reserve(ReserveReq("acme", "k0", "other", "a3")).reply.outcome(),
      OUTCOME_MISMATCH);
  // 2 Completes OK, 1 refused: k2 with k0's token.
  ASSERT_TRUE(client()
                  .Complete("acme", "k0", token[0], SampleResponse("x"))
                  .status.ok());
  ASSERT_TRUE(client()
                  .Complete("acme", "k1", token[1], SampleResponse("y"))
                  .status.ok());
  ASSERT_EQ(client()
                .Complete("acme", "k2", token[0], SampleResponse("z"))
                .status.error_code(),
            grpc::StatusCode::ABORTED);
  // 1 replay of a completed key.
  ASSERT_EQ(
      client().Reserve(ReserveReq("acme", "k0", "body", "a4")).reply.outcome(),
      OUTCOME_COMPLETED);
  // 2 Lookups of absent keys, 1 Reserve with an invalid key.
  for (const char* key : {"absent-1", "absent-2"}) {
    ASSERT_EQ(client().Lookup("acme", key).status.error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  ASSERT_EQ(client()
                .Reserve(ReserveReq("acme", "bad key", "body", "a5"))
                .status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // 1 Ping (finished inline, not on the pool), 1 admin call.
  {
    auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
    grpc::ClientContext ctx;
    idemkey::v1::PingResponse pong;
    ASSERT_TRUE(stub->Ping(&ctx, idemkey::v1::PingRequest(), &pong).ok());
  }
  // 1 Batch: its Reserve ops' outcomes count like Reserve calls' (1 OWNER;
  // the op refused for its key has none).
  {
    auto stub = idemkey::v1::KeyService::NewStub(server().NewChannel());
    grpc::ClientContext ctx;
    idemkey::v1::BatchRequest req;
    *req.add_ops()->mutable_reserve() = ReserveReq("acme", "kb", "body", "b1");
    *req.add_ops()->mutable_reserve() =
        ReserveReq("acme", "bad key", "body", "b2");
    idemkey::v1::BatchResponse resp;
    ASSERT_TRUE(stub->Batch(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.results(1).code(), grpc::INVALID_ARGUMENT);
  }
  ASSERT_TRUE(client().GetStats().status.ok());
  // Health checks are not KeyService/AdminService calls: not counted.
  ASSERT_TRUE(client().HealthCheck().status.ok());

  ParsedMetrics m = Scrape();
  auto calls = [&](const std::string& method, const std::string& code) {
    return m.Find("idemkey_calls_total", {{"method", method}, {"code", code}})
        .value_or(0);
  };
  EXPECT_EQ(calls("Reserve", "OK"), 6);
  EXPECT_EQ(calls("Reserve", "INVALID_ARGUMENT"), 1);
  EXPECT_EQ(calls("Complete", "OK"), 2);
  EXPECT_EQ(calls("Complete", "ABORTED"), 1);
  EXPECT_EQ(calls("Lookup", "NOT_FOUND"), 2);
  EXPECT_EQ(calls("Lookup", "OK"), 0);
  EXPECT_EQ(calls("Ping", "OK"), 1);
  EXPECT_EQ(calls("Batch", "OK"), 1);
  EXPECT_EQ(calls("GetStats", "OK"), 1);
  // Nothing else: the sum over every series is the number of calls made.
  double total = 0;
  std::set<std::string> methods;
  for (const Sample& s : m.samples) {
    if (s.name != "idemkey_calls_total") continue;
    total += s.value;
    methods.insert(s.labels.at("method"));
  }
  EXPECT_EQ(total, 6 + 1 + 3 + 2 + 1 + 1 + 1);
  // Every method of both services is listed (with code="OK"), and no other.
  std::set<std::string> expected;
  for (const char* name :
       {"idemkey.v1.KeyService", "idemkey.v1.AdminService"}) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      expected.insert(service->method(i)->name());
    }
  }
  EXPECT_EQ(methods, expected) << last_text_;
  for (const char* method :
       {"Reserve", "Complete", "Release", "Heartbeat", "Lookup", "Ping",
        "ListRecords", "DeleteRecord", "ListTenants", "CreateTenant",
        "DropTenant", "GetStats"}) {
    EXPECT_EQ(methods.count(method), 1u) << method;
  }

  EXPECT_EQ(m.Get("idemkey_reserve_outcomes_total", {{"outcome", "owner"}}), 4);
  EXPECT_EQ(
      m.Get("idemkey_reserve_outcomes_total", {{"outcome", "in_progress"}}), 1);
  EXPECT_EQ(m.Get("idemkey_reserve_outcomes_total", {{"outcome", "completed"}}),
            1);
  EXPECT_EQ(m.Get("idemkey_reserve_outcomes_total", {{"outcome", "mismatch"}}),
            1);

  // Every call is in its method's histogram, errors included.
  EXPECT_EQ(
      m.Get("idemkey_call_duration_seconds_count", {{"method", "Reserve"}}), 7);
  EXPECT_EQ(
      m.Get("idemkey_call_duration_seconds_count", {{"method", "Complete"}}),
      3);
  EXPECT_EQ(
      m.Get("idemkey_call_duration_seconds_count", {{"method", "Lookup"}}), 2);
  EXPECT_EQ(
      m.Get("idemkey_call_duration_seconds_count", {{"method", "Release"}}), 0);
  EXPECT_EQ(m.Get("idemkey_call_duration_seconds_bucket",
                  {{"method", "Reserve"}, {"le", "+Inf"}}),
            7);
  EXPECT_GT(m.Get("idemkey_call_duration_seconds_sum", {{"method", "Reserve"}}),
            0);
  EXPECT_EQ(m.types["idemkey_call_duration_seconds"], "histogram");
  EXPECT_EQ(m.types["idemkey_calls_total"], "counter");

  // Store figures: one tenant, bounded per-tenant series, RocksDB gauges.
  EXPECT_EQ(m.Get("idemkey_tenants"), 1);
  EXPECT_GE(m.Get("idemkey_tenant_records", {{"tenant", "acme"}}), 0);
  EXPECT_GE(m.Get("idemkey_tenant_disk_bytes", {{"tenant", "acme"}}), 0);
  EXPECT_EQ(m.Get("idemkey_expired_records_dropped_total"), 0);
  if (!UsingPostgres()) {  // RocksDB's figures
    EXPECT_GT(m.Get("idemkey_rocksdb_block_cache_capacity_bytes"), 0);
    EXPECT_GT(m.Get("idemkey_rocksdb_wal_bytes"), 0);  // the records above
  }
  for (const char* name :
       {"idemkey_rocksdb_compaction_pending",
        "idemkey_rocksdb_pending_compaction_bytes",
        "idemkey_rocksdb_block_cache_usage_bytes",
        "idemkey_rocksdb_block_cache_hits_total",
        "idemkey_rocksdb_block_cache_misses_total",
        "idemkey_rocksdb_write_stall_seconds_total",
        "idemkey_rocksdb_write_stopped", "idemkey_rocksdb_memtable_bytes"}) {
    EXPECT_TRUE(m.Find(name, {}).has_value()) << name << "\n" << last_text_;
    EXPECT_FALSE(m.helps[name].empty()) << name;
  }
  EXPECT_EQ(m.Get("idemkey_rocksdb_write_stalls_total", {{"kind", "stop"}}), 0);

  // A scrape changes no counter but its own reads.
  ParsedMetrics again = Scrape();
  EXPECT_EQ(
      again.Get("idemkey_calls_total", {{"method", "Reserve"}, {"code", "OK"}}),
      6);
}

// The standard process families and the build, from /proc of idemkeyd.
TEST_F(MetricsTest, ProcessFiguresAndBuildInfo) {
  const double before = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  ParsedMetrics m = Scrape();
  EXPECT_EQ(m.Get("idemkey_build_info", {{"version", "0.1.0"}}), 1)
      << last_text_;
  // A real server holds tens of MiB and some descriptors (its listeners,
  // RocksDB's files).
  EXPECT_GT(m.Get("process_resident_memory_bytes", {}), 4 << 20) << last_text_;
  EXPECT_GT(m.Get("process_virtual_memory_bytes", {}),
            m.Get("process_resident_memory_bytes", {}));
  EXPECT_GE(m.Get("process_open_fds", {}), 5) << last_text_;
  EXPECT_GT(m.Get("process_max_fds", {}), m.Get("process_open_fds", {}));
  EXPECT_GT(m.Get("process_cpu_seconds_total", {}), 0) << last_text_;
  const double start = m.Get("process_start_time_seconds", {});
  EXPECT_LT(start, before);
  EXPECT_GT(start, before - 120);
  EXPECT_EQ(m.types["process_cpu_seconds_total"], "counter");
}

TEST_F(MetricsTest, OtherPathsAreNotFound) {
  const std::string port = ReadFile(MetricsPortFile());
  httplib::Client http("127.0.0.1", std::atoi(port.c_str()));
  httplib::Result res = http.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(MetricsTest, EndpointServesAgainAfterRestartWithCountersFromZero) {
  ASSERT_TRUE(client().Lookup("acme", "x").status.error_code() ==
              grpc::StatusCode::NOT_FOUND);
  RestartServer();  // clean stop with the endpoint up: exit 0
  ParsedMetrics m = Scrape();
  EXPECT_EQ(m.Find("idemkey_calls_total",
                   {{"method", "Lookup"}, {"code", "NOT_FOUND"}})
                .value_or(0),
            0);
}

TEST(MetricsStartupTest, MetricsPortInUseFailsClearly) {
  TempDir dir;
  const std::string port_file = dir.path() + "/metrics.port";
  IdemkeydProcess first(
      dir.path() + "/a",
      {"--metrics_listen=127.0.0.1:0", "--metrics_port_file=" + port_file});
  ASSERT_TRUE(first.Start());
  const std::string port =
      std::to_string(std::atoi(ReadFile(port_file).c_str()));
  ASSERT_NE(port, "0");
  CommandResult r =
      RunIdemkeyd({"--listen=127.0.0.1:0", "--data_dir=" + dir.path() + "/b",
                   "--metrics_listen=127.0.0.1:" + port});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("cannot listen on 127.0.0.1:" + port +
                          " for metrics: the address is in use"),
            std::string::npos)
      << r.output;
  ASSERT_TRUE(first.Stop());
}

TEST(MetricsStartupTest, MalformedMetricsAddressFailsClearly) {
  TempDir dir;
  CommandResult r =
      RunIdemkeyd({"--listen=127.0.0.1:0", "--data_dir=" + dir.path() + "/d",
                   "--metrics_listen=127.0.0.1"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--metrics_listen \"127.0.0.1\" is not host:port"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace idemkey::testing
