// Private to CKernels: the panel layout shared by packed_gemm.c and winograd.c.
#ifndef CK_PACKED_LAYOUT_H
#define CK_PACKED_LAYOUT_H

// Micro-tile: CK_MR rows of A (output channels) by CK_NR columns of B (pixels or tiles).
#define CK_MR 8
#define CK_NR 32
// A is packed in panels of CK_MP rows (k-major: CK_MP values per depth step). The 8 × 32 kernel
// reads half a panel; the channels-in-lanes kernel (packed_gemm.c) one 16-lane vector of it.
#define CK_MP 16
// Depth block: A and B are packed in blocks of CK_KC rows of depth.
#ifndef CK_KC
#define CK_KC 256
#endif

#endif
