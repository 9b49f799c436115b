// Owning pointers for GObject/GStreamer references kept in C++ members. Adoption of an
// existing reference vs. taking a new one is spelled out at every call site.
#pragma once

#include <gst/gst.h>

#include <utility>

namespace wish {

template <typename T>
struct RefTraits {
  static void ref(T *p) { g_object_ref(p); }
  static void unref(T *p) { g_object_unref(p); }
};
template <>
struct RefTraits<GstCaps> {
  static void ref(GstCaps *p) { gst_caps_ref(p); }
  static void unref(GstCaps *p) { gst_caps_unref(p); }
};
template <>
struct RefTraits<GstStructure> {
  static void ref(GstStructure *) = delete;
  static void unref(GstStructure *p) { gst_structure_free(p); }
};
template <>
struct RefTraits<GstPromise> {
  static void ref(GstPromise *p) { gst_promise_ref(p); }
  static void unref(GstPromise *p) { gst_promise_unref(p); }
};

template <typename T>
class GPtr {
public:
  GPtr() = default;
  GPtr(std::nullptr_t) {}
  GPtr(const GPtr &o) : p_(o.p_) {
    if (p_) RefTraits<T>::ref(p_);
  }
  GPtr(GPtr &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  GPtr &operator=(GPtr o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  ~GPtr() { reset(); }

  // Takes over a reference the caller owns (transfer full).
  static GPtr adopt(T *p) {
    GPtr r;
    r.p_ = p;
    return r;
  }
  // Takes a new reference (transfer none).
  static GPtr ref(T *p) {
    GPtr r;
    r.p_ = p;
    if (p) RefTraits<T>::ref(p);
    return r;
  }
  // Sinks a floating GstObject reference (freshly made elements and pads).
  static GPtr sink(T *p) {
    GPtr r;
    r.p_ = p;
    if (p) gst_object_ref_sink(p);
    return r;
  }

  void reset() {
    if (p_) RefTraits<T>::unref(std::exchange(p_, nullptr));
  }
  T *release() { return std::exchange(p_, nullptr); }
  T *get() const { return p_; }
  T *operator->() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

private:
  T *p_ = nullptr;
};

// RAII for GMutex, in the spirit of std::lock_guard.
class MutexLocker {
public:
  explicit MutexLocker(GMutex *m) : m_(m) { g_mutex_lock(m_); }
  ~MutexLocker() { g_mutex_unlock(m_); }
  MutexLocker(const MutexLocker &) = delete;
  MutexLocker &operator=(const MutexLocker &) = delete;

private:
  GMutex *m_;
};

}  // namespace wish
