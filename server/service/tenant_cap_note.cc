#include "server/service/tenant_cap_note.h"

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "server/store/backend.h"
#include "server/util/log.h"

namespace idemkey::service {

void NoteTenantCap(const absl::Status& s) {
  if (!store::IsTenantCap(s)) return;
  static std::atomic<int64_t> last_ms{0};
  const int64_t now = absl::ToUnixMillis(absl::Now());
  int64_t last = last_ms.load();
  if (now - last < 10'000 || !last_ms.compare_exchange_strong(last, now)) {
    return;
  }
  util::Log(util::LogLevel::kWarning, s.message());
}

}  // namespace idemkey::service
