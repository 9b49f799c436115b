// GstWishClientBin: the abstract base of the client elements (whepsrc, whipsink). It owns
// the element's ClientElement, which is the element's media side and holds the
// SessionClient that speaks WHEP or WHIP; it installs the properties both clients share,
// the restart-ice action signal, and starts and stops the session on state changes.
#pragma once

#include <gst/gst.h>

#include "session_client.h"

namespace wish {
class ClientElement;
}

G_BEGIN_DECLS

#define GST_TYPE_WISH_CLIENT_BIN (gst_wish_client_bin_get_type())
G_DECLARE_DERIVABLE_TYPE(GstWishClientBin, gst_wish_client_bin, GST, WISH_CLIENT_BIN, GstBin)

struct _GstWishClientBinClass {
  GstBinClass parent_class;
  // Makes the C++ side of a new instance; the base deletes it at finalize.
  wish::ClientElement *(*create_impl)(GstWishClientBin *self);
};

G_END_DECLS

namespace wish {

// The C++ side of a client element: its media (what it plays or publishes) and its session.
class ClientElement : public MediaSide {
public:
  ClientElement(GstElement *element, ClientProtocol protocol) : element_(element), client_(element, protocol, this) {}
  ~ClientElement() override = default;
  GstElement *element() const { return element_; }
  SessionClient &client() { return client_; }

  // READY->PAUSED: false after posting an element error. By default the session starts at once.
  virtual bool activate() { return client_.start(); }
  // PAUSED->READY
  virtual void deactivate() { client_.stop(); }

private:
  GstElement *element_;
  SessionClient client_;
};

ClientElement *client_impl(gpointer client_bin);

// The endpoint property (whep-endpoint, whip-endpoint), installed by each subclass with this
// id on its own class; set and get it with the functions below.
void install_endpoint_property(GObjectClass *klass, guint prop_id, const char *protocol);
void set_endpoint(gpointer client_bin, const GValue *value);
void get_endpoint(gpointer client_bin, GValue *value);

}  // namespace wish
