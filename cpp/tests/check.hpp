// A minimal check helper for the plain C++ tests (no framework): CHECK records a failure with its file, line
// and expression and goes on; finish() prints the summary and gives the exit status (0: every check passed).
#pragma once
#include <cstdio>
#include <string>

namespace lawfit_test {

inline int& failures() {
    static int n = 0;
    return n;
}
inline int& checks() {
    static int n = 0;
    return n;
}

inline bool record(bool ok, const char* file, int line, const char* expr, const std::string& detail) {
    ++checks();
    if (!ok) {
        ++failures();
        std::printf("FAILED %s:%d: %s%s%s\n", file, line, expr, detail.empty() ? "" : " -- ", detail.c_str());
    }
    return ok;
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

inline std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

inline int finish(const char* name) {
    std::printf("%s: %d checks, %d failed\n", name, checks(), failures());
    if (failures() == 0) std::printf("ALL CHECKS PASSED\n");
    return failures() == 0 ? 0 : 1;
}

}  // namespace lawfit_test

#define CHECK(cond) ::lawfit_test::record(static_cast<bool>(cond), __FILE__, __LINE__, #cond, std::string())
// CHECK with a message (any std::string expression) printed on failure.
#define CHECK_MSG(cond, msg) ::lawfit_test::record(static_cast<bool>(cond), __FILE__, __LINE__, #cond, (msg))
