#include "common/utf8.h"
#include "index/normalize.h"

#include <array>
#include <cstdint>

namespace fhirshift::index {
namespace {

// Decodes one UTF-8 code point at s[i] (advancing i); invalid bytes decode as themselves.
uint32_t next_code_point(std::string_view s, size_t& i) {
  auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 1;
  if (i + static_cast<size_t>(len) > s.size()) len = 1;
  uint32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
  for (int k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((c & 0xC0) != 0x80) {
      len = 1;
      cp = b;
      break;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  i += static_cast<size_t>(len);
  return cp;
}

// Base letters of U+00C0..U+00FF ('*' = not a letter: keep) and of U+0100..U+017F.
const std::array<const char*, 64> kLatin1{
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "*", "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i",  "i",
    "d", "n", "o", "o", "o", "o", "o",  "*", "o", "u", "u", "u", "u", "y", "th", "y"};

const char* latin_ext_a(uint32_t cp) {
  struct Run {
    uint32_t last;
    const char* base;
  };
  static constexpr Run kRuns[] = {
      {0x105, "a"}, {0x10D, "c"},  {0x111, "d"}, {0x11B, "e"}, {0x123, "g"}, {0x127, "h"},
      {0x131, "i"}, {0x133, "ij"}, {0x135, "j"}, {0x138, "k"}, {0x142, "l"}, {0x14B, "n"},
      {0x151, "o"}, {0x153, "oe"}, {0x159, "r"}, {0x161, "s"}, {0x167, "t"}, {0x173, "u"},
      {0x175, "w"}, {0x178, "y"},  {0x17E, "z"}, {0x17F, "s"}};
  for (const auto& r : kRuns)
    if (cp <= r.last) return r.base;
  return nullptr;
}

bool is_space(uint32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' ||
         cp == 0xA0 || cp == 0x2007 || cp == 0x202F || cp == 0x3000 ||
         (cp >= 0x2000 && cp <= 0x200A);
}

uint32_t to_lower(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 32;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;
  if ((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177)) return cp | 1;
  if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return (cp & 1) ? cp + 1 : cp;
  if (cp == 0x178) return 0xFF;
  // Greek
  if ((cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2)) return cp + 0x20;
  if (cp == 0x386) return 0x3AC;
  if (cp >= 0x388 && cp <= 0x38A) return cp + 0x25;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 0x3F;
  // Cyrillic
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
  return cp;
}

// The base letter of a lower-case Greek or Cyrillic letter with a mark (what Unicode
// decomposition leaves once the mark is dropped), or the letter itself. Final sigma is sigma.
uint32_t strip_mark(uint32_t cp) {
  switch (cp) {
    case 0x3AC:
      return 0x3B1;  // ά
    case 0x3AD:
      return 0x3B5;  // έ
    case 0x3AE:
      return 0x3B7;  // ή
    case 0x3AF:
    case 0x390:
    case 0x3CA:
      return 0x3B9;  // ί ΐ ϊ
    case 0x3CC:
      return 0x3BF;  // ό
    case 0x3CD:
    case 0x3B0:
    case 0x3CB:
      return 0x3C5;  // ύ ΰ ϋ
    case 0x3CE:
      return 0x3C9;  // ώ
    case 0x3C2:
      return 0x3C3;  // ς
    case 0x450:
    case 0x451:
      return 0x435;  // ѐ ё
    case 0x453:
      return 0x433;  // ѓ
    case 0x457:
      return 0x456;  // ї
    case 0x45C:
      return 0x43A;  // ќ
    case 0x45D:
    case 0x439:
      return 0x438;  // ѝ й
    case 0x45E:
      return 0x443;  // ў
    default:
      return cp;
  }
}

}  // namespace

std::string normalize_string(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_code_point(s, i);
    if (is_space(cp)) {
      pending_space = !out.empty();
      continue;
    }
    if (cp >= 0x300 && cp <= 0x36F) continue;  // combining marks
    if (pending_space) {
      out += ' ';
      pending_space = false;
    }
    if (cp < 0x80) {
      out += static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    } else if (cp >= 0xC0 && cp <= 0xFF && kLatin1[cp - 0xC0][0] != '*') {
      out += kLatin1[cp - 0xC0];
    } else if (cp >= 0x100 && cp <= 0x17F) {
      out += latin_ext_a(cp);
    } else {
      append_utf8(out, strip_mark(to_lower(cp)));
    }
  }
  return out;
}

std::string lower_case(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    uint32_t cp = next_code_point(s, i);
    if (cp == 0x130) {  // İ lower-cases to i + combining dot above
      out += "i\xCC\x87";
      continue;
    }
    append_utf8(out, to_lower(cp));
  }
  return out;
}

namespace {

// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}
unsigned days_in(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : kDays[m - 1];
}

// Reads exactly n digits at s[pos].
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

constexpr int64_t kDay = 86400000;

}  // namespace

std::optional<DateRange> parse_date_range(std::string_view s) {
  int year = 0, month = 1, day = 1;
  if (!digits(s, 0, 4, year)) return std::nullopt;
  if (s.size() == 4) {
    int64_t lo = days_from_civil(year, 1, 1) * kDay;
    return DateRange{lo, days_from_civil(year + 1, 1, 1) * kDay - 1};
  }
  if (s[4] != '-' || !digits(s, 5, 2, month) || month < 1 || month > 12) return std::nullopt;
  if (s.size() == 7) {
    int64_t lo = days_from_civil(year, static_cast<unsigned>(month), 1) * kDay;
    return DateRange{lo, lo + days_in(year, static_cast<unsigned>(month)) * kDay - 1};
  }
  if (s[7] != '-' || !digits(s, 8, 2, day) || day < 1 ||
      day > static_cast<int>(days_in(year, static_cast<unsigned>(month))))
    return std::nullopt;
  int64_t date_ms =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * kDay;
  if (s.size() == 10) return DateRange{date_ms, date_ms + kDay - 1};
  // Time: Thh:mm[:ss[.f+]][Z|+hh:mm|-hh:mm]
  int hh = 0, mm = 0, ss = 0;
  if (s[10] != 'T' || !digits(s, 11, 2, hh) || s.size() < 16 || s[13] != ':' ||
      !digits(s, 14, 2, mm) || hh > 23 || mm > 59)
    return std::nullopt;
  size_t pos = 16;
  int64_t span = 60000;  // minute precision
  int64_t frac_ms = 0;
  if (pos < s.size() && s[pos] == ':') {
    if (!digits(s, pos + 1, 2, ss) || ss > 60) return std::nullopt;
    pos += 3;
    span = 1000;
    if (pos < s.size() && s[pos] == '.') {
      size_t start = ++pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
      size_t n = pos - start;
      if (n == 0) return std::nullopt;
      int64_t scale = 100;
      for (size_t i = 0; i < n && i < 3; ++i, scale /= 10) frac_ms += (s[start + i] - '0') * scale;
      span = n >= 3 ? 1 : n == 2 ? 10 : 100;
    }
  }
  int64_t offset_ms = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' && pos + 1 == s.size()) {
      // UTC
    } else if ((s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
      int oh = 0, om = 0;
      if (!digits(s, pos + 1, 2, oh) || !digits(s, pos + 4, 2, om) || oh > 14 || om > 59)
        return std::nullopt;
      offset_ms = (oh * 3600000LL + om * 60000LL) * (s[pos] == '-' ? -1 : 1);
    } else {
      return std::nullopt;
    }
  }
  int64_t lo = date_ms + hh * 3600000LL + mm * 60000LL + ss * 1000LL + frac_ms - offset_ms;
  return DateRange{lo, lo + span - 1};
}

}  // namespace fhirshift::index
