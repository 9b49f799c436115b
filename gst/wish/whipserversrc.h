#pragma once

#include <gst/gst.h>

#include "server_bin.h"

G_BEGIN_DECLS

#define GST_TYPE_WHIP_SERVER_SRC (gst_whip_server_src_get_type())
G_DECLARE_FINAL_TYPE(GstWhipServerSrc, gst_whip_server_src, GST, WHIP_SERVER_SRC, GstWishServerBin)

GST_ELEMENT_REGISTER_DECLARE(whipserversrc);

G_END_DECLS
