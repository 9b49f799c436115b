#pragma once

#include <gst/gst.h>

#include "client_bin.h"

G_BEGIN_DECLS

#define GST_TYPE_WHEP_SRC (gst_whep_src_get_type())
G_DECLARE_FINAL_TYPE(GstWhepSrc, gst_whep_src, GST, WHEP_SRC, GstWishClientBin)

GST_ELEMENT_REGISTER_DECLARE(whepsrc);

G_END_DECLS
