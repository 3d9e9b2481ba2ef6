"""Initial file contents of the sample world. C-like text written for tracker, not kernel code.

Functions that later fixes touch are kept far apart, so a 3-way merge sees exactly the overlaps
the world is designed to have (and no accidental ones).
"""

from __future__ import annotations

_FILLER = "\n".join(
    f"/* placeholder line {i}: unrelated code keeps hunks apart */" for i in range(1, 9)
)


def _c(text: str) -> str:
    return text.lstrip("\n").replace("@FILLER@", _FILLER)


MAKEFILE = _c(
    """
# SPDX-License-Identifier: GPL-2.0
VERSION = 5
PATCHLEVEL = 19
SUBLEVEL = 0
EXTRAVERSION =
NAME = Sample World
"""
)

PGTABLE_H = _c(
    """
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_PGTABLE_H
#define _LINUX_PGTABLE_H

#include <linux/mm_types.h>

/* lazy mmu hooks: none yet */

@FILLER@

/* set_ptes: not defined generically yet */

#endif /* _LINUX_PGTABLE_H */
"""
)

MEMORY_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/mm.h>
#include <linux/pgtable.h>

static int apply_to_pte_range(struct mm_struct *mm, pmd_t *pmd,
				     unsigned long addr, unsigned long end,
				     pte_fn_t fn, void *data, bool create)
{
	pte_t *pte, *mapped_pte;
	int err = 0;

	mapped_pte = pte = pte_offset_map(pmd, addr);
	do {
		err = fn(pte++, addr, data);
		if (err)
			break;
	} while (addr += PAGE_SIZE, addr != end);
	pte_unmap(mapped_pte);
	return err;
}
"""
)

VMALLOC_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/vmalloc.h>
#include <linux/pgtable.h>

static int vmap_pages_pte_range(pmd_t *pmd, unsigned long addr,
		unsigned long end, pgprot_t prot, struct page **pages, int *nr)
{
	pte_t *pte;

	pte = pte_alloc_kernel(pmd, addr);
	if (!pte)
		return -ENOMEM;
	do {
		struct page *page = pages[*nr];

		if (WARN_ON(!pte_none(*pte)))
			return -EBUSY;
		if (WARN_ON(!page))
			return -ENOMEM;
		set_pte_at(&init_mm, addr, pte, mk_pte(page, prot));
		(*nr)++;
	} while (pte++, addr += PAGE_SIZE, addr != end);
	return 0;
}

@FILLER@

int vmap_pages_range(unsigned long addr, unsigned long end,
		pgprot_t prot, struct page **pages)
{
	return vmap_range_noflush(addr, end, prot, pages);
}
"""
)

SPARC_TLB_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0
#include <linux/mm.h>
#include <asm/tlbflush.h>

static DEFINE_PER_CPU(struct tlb_batch, tlb_batch);

void arch_enter_lazy_mmu_mode(void)
{
	struct tlb_batch *tb = this_cpu_ptr(&tlb_batch);

	tb->active = 1;
}

@FILLER@

void arch_leave_lazy_mmu_mode(void)
{
	struct tlb_batch *tb = this_cpu_ptr(&tlb_batch);

	if (tb->tlb_nr)
		flush_tlb_pending();
	tb->active = 0;
}
"""
)

SPARC_PGTABLE_H = _c(
    """
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _SPARC64_PGTABLE_H
#define _SPARC64_PGTABLE_H

#define __HAVE_ARCH_ENTER_LAZY_MMU_MODE

static inline void set_pte_at(struct mm_struct *mm, unsigned long addr,
		pte_t *ptep, pte_t pte)
{
	__set_pte_at(mm, addr, ptep, pte, 0);
}

#endif /* _SPARC64_PGTABLE_H */
"""
)

XEN_MMU_PV_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0
#include <xen/xen.h>

static void enter_lazy(enum xen_lazy_mode mode)
{
	BUG_ON(this_cpu_read(xen_lazy_mode) != XEN_LAZY_NONE);

	this_cpu_write(xen_lazy_mode, mode);
}

@FILLER@

static void xen_enter_lazy_mmu(void)
{
	enter_lazy(XEN_LAZY_MMU);
}
"""
)

ARM64_PGTABLE_H = _c(
    """
/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef __ASM_PGTABLE_H
#define __ASM_PGTABLE_H

#define __HAVE_ARCH_ENTER_LAZY_MMU_MODE
static inline void arch_enter_lazy_mmu_mode(void)
{
	VM_WARN_ON(in_interrupt());
	set_thread_flag(TIF_LAZY_MMU);
}

@FILLER@

static inline void arch_leave_lazy_mmu_mode(void)
{
	emit_pte_barriers();
	clear_thread_flag(TIF_LAZY_MMU);
}

#endif /* __ASM_PGTABLE_H */
"""
)

TASK_MMU_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0
#include <linux/pagewalk.h>

static int pagemap_scan_pmd_entry(pmd_t *pmd, unsigned long start,
				  unsigned long end, struct mm_walk *walk)
{
	int ret = 0;

	ret = pagemap_scan_thp_entry(pmd, start, end, walk);
	if (ret != -ENOENT)
		return ret;
	return pagemap_scan_ptes(pmd, start, end, walk);
}

@FILLER@

static long do_pagemap_scan(struct mm_struct *mm, unsigned long uarg)
{
	struct pagemap_scan_private p = {0};
	long ret;

	arch_enter_lazy_mmu_mode();
	ret = walk_page_range(mm, p.arg.start, p.arg.end, &pagemap_scan_ops, &p);
	arch_leave_lazy_mmu_mode();
	return ret;
}
"""
)

MM_TYPES_H = _c(
    """
/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_MM_TYPES_H
#define _LINUX_MM_TYPES_H

struct ptdesc {
	unsigned long __page_flags;
	union {
		struct rcu_head pt_rcu_head;
		struct list_head pt_list;
	};
	unsigned long __page_mapping;
};

#endif /* _LINUX_MM_TYPES_H */
"""
)

HUGETLB_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0-only
/*
 * Generic hugetlb support.
 */
#include <linux/hugetlb.h>
#include <linux/mm.h>
#include <asm/tlb.h>

int copy_hugetlb_page_range(struct mm_struct *dst, struct mm_struct *src,
			    struct vm_area_struct *dst_vma,
			    struct vm_area_struct *src_vma)
{
	pte_t *src_pte, *dst_pte;
	unsigned long addr;

	for (addr = src_vma->vm_start; addr < src_vma->vm_end; addr += sz) {
		src_pte = hugetlb_walk(src_vma, addr, sz);
		if (!src_pte)
			continue;
		dst_pte = huge_pte_alloc(dst, dst_vma, addr, sz);
		copy_one_huge_pte(dst, src, dst_pte, src_pte, addr);
	}
	return 0;
}

@FILLER@

static int hugetlb_vm_op_split(struct vm_area_struct *vma, unsigned long addr)
{
	if (addr & ~(huge_page_mask(hstate_vma(vma))))
		return -EINVAL;
	return 0;
}

@FILLER@

/* pmd sharing: not implemented */

@FILLER@

static void hugetlb_unshare_pmds(struct vm_area_struct *vma,
				   unsigned long start, unsigned long end)
{
	struct mm_struct *mm = vma->vm_mm;
	unsigned long address;
	spinlock_t *ptl;
	pte_t *ptep;

	for (address = start; address < end; address += PUD_SIZE) {
		ptep = hugetlb_walk(vma, address, sz);
		if (!ptep)
			continue;
		ptl = huge_pte_lock(h, mm, ptep);
		spin_unlock(ptl);
	}
	flush_hugetlb_tlb_range(vma, start, end);
}
"""
)

MMU_GATHER_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/mm.h>
#include <asm/tlb.h>

static void tlb_table_flush(struct mmu_gather *tlb)
{
	struct mmu_table_batch **batch = &tlb->batch;

	if (*batch) {
		tlb_remove_table_free(*batch);
		*batch = NULL;
	}
}

@FILLER@

void tlb_remove_table(struct mmu_gather *tlb, void *table)
{
	struct mmu_table_batch **batch = &tlb->batch;

	if (*batch == NULL) {
		*batch = (struct mmu_table_batch *)__get_free_page(GFP_NOWAIT);
		if (*batch == NULL) {
			tlb_remove_table_one(table);
			return;
		}
		(*batch)->nr = 0;
	}

	(*batch)->tables[(*batch)->nr++] = table;
	if ((*batch)->nr == MAX_TABLE_BATCH)
		tlb_table_flush(tlb);
}
"""
)

UTIL_C = _c(
    """
// SPDX-License-Identifier: GPL-2.0-only
#include <linux/mm.h>

/* helpers shared by the mm core */
int mm_util_version = 1;
"""
)

INITIAL_FILES: dict[str, str] = {
    "Makefile": MAKEFILE,
    "include/linux/pgtable.h": PGTABLE_H,
    "include/linux/mm_types.h": MM_TYPES_H,
    "mm/memory.c": MEMORY_C,
    "mm/vmalloc.c": VMALLOC_C,
    "mm/hugetlb.c": HUGETLB_C,
    "mm/mmu_gather.c": MMU_GATHER_C,
    "mm/util.c": UTIL_C,
    "arch/sparc/mm/tlb.c": SPARC_TLB_C,
    "arch/sparc/include/asm/pgtable_64.h": SPARC_PGTABLE_H,
    "arch/x86/xen/mmu_pv.c": XEN_MMU_PV_C,
    "arch/arm64/include/asm/pgtable.h": ARM64_PGTABLE_H,
    "fs/proc/task_mmu.c": TASK_MMU_C,
}
