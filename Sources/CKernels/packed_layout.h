// Private to CKernels: the panel layout shared by packed_gemm.c and winograd.c.
#ifndef CK_PACKED_LAYOUT_H
#define CK_PACKED_LAYOUT_H

// Micro-tile: CK_MR rows of A (output channels) by CK_NR columns of B (pixels or tiles).
#define CK_MR 8
#define CK_NR 32
// Depth block: A and B are packed in blocks of CK_KC rows of depth.
#ifndef CK_KC
#define CK_KC 256
#endif

#endif
