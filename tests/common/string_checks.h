// String checks for gst-check tests: equality and containment, printing both sides.
#pragma once

#include <gst/check/gstcheck.h>

#include <string>

#define assert_str(a, b)                                                                 \
  do {                                                                                   \
    std::string first_ = (a), second_ = (b);                                             \
    fail_unless(first_ == second_, "'%s' != '%s'", first_.c_str(), second_.c_str());    \
  } while (0)
#define assert_contains(hay, needle)                                                     \
  do {                                                                                   \
    std::string h_ = (hay), n_ = (needle);                                               \
    fail_unless(h_.find(n_) != std::string::npos, "'%s' not in '%s'", n_.c_str(), h_.c_str()); \
  } while (0)
