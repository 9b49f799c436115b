// GstWishServerBin: the abstract base of the server elements (whepserversink,
// whipserversrc). It owns the element's ServerElement (created by the subclass's
// create_impl), installs the HTTP properties every server element has, the post, patch,
// delete and switch-stream action signals, and drives start and stop from state changes.
#pragma once

#include <gst/gst.h>

#ifdef __cplusplus
namespace wish {
class ServerElement;
}
#endif

G_BEGIN_DECLS

#define GST_TYPE_WISH_SERVER_BIN (gst_wish_server_bin_get_type())
G_DECLARE_DERIVABLE_TYPE(GstWishServerBin, gst_wish_server_bin, GST, WISH_SERVER_BIN, GstBin)

struct _GstWishServerBinClass {
  GstBinClass parent_class;
  // Makes the C++ side of a new instance; the base deletes it at finalize.
  wish::ServerElement *(*create_impl)(GstWishServerBin *self);
};

G_END_DECLS

namespace wish {

ServerElement *server_impl(gpointer server_bin);

// The path property, installed by each subclass with its own default ("/whep", "/whip"),
// with this id on the subclass's class.
void install_path_property(GObjectClass *klass, guint prop_id, const char *protocol, const char *default_path);

}  // namespace wish
