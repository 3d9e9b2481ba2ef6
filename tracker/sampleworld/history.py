"""The sample world's history, modelled on the real cases in shared/facts.md.

Roles (keys of :class:`SampleWorld.shas`) name each commit so tests can assert decisions:

mainline, before v6.1: H0 (root hugetlb culprit), L_APPLY, VM_TRACK (vmalloc culprit), XEN_NEST
v6.1..v6.6: L_SETPTES, L_SPARC (lazy-MMU culprits younger than v6.1), VM_PREREQ (prerequisite
    of VM_FIX), RC (mmu_gather change, Cc: stable # 6.6.x)
v6.6..v6.12: HX (prerequisite of H1)
v6.12..v6.13: H1 (Fixes: H0)
v6.14..v6.15: the "Fix lazy mmu mode" series L1..L5, then VM_FIX (Fixes: VM_TRACK)
v6.15..v6.16: H2, H3 (Fixes: H0), H4 (Fixes: H1), RF (Fixes: RC)
after v6.16: L7 (Cc: stable # 6.12.x), H5 (Fixes: the 6.12.y backport of H1), H6 (Fixes: H3),
    H7 (Fixes: a sha tracker cannot know), L8 (Cc: stable # 6.1.x: VM_PREREQ, a prerequisite)
RF's Fixes: quotes RC's subject with HX's sha: tracker repairs it by subject and flags it.

Stable branches: linux-6.12.y, linux-6.6.y, linux-6.1.y (see build_world for their backports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tracker.sampleworld import files
from tracker.sampleworld.builder import Edit, Person, WorldBuilder

LINUS = Person("Lin Torvalds", "lin@example.org")
AKPM = Person("Andy Mortimer", "andy@example.org")
RYAN = Person("Ryan Robins", "ryan@example.org")
JANN = Person("Jan Horne", "jan@example.org")
DAVID = Person("Dave Hildebrandt", "dave@example.org")
ALEX = Person("Alex Gordon", "alex@example.org")
GREG = Person("Gregor Kroeger", "gregor@example.org")
SASHA = Person("Sacha Lewin", "sacha@example.org")
JUERGEN = Person("Jurgen Gross", "jurgen@example.org")
WILL = Person("Will Deacon-Smith", "will@example.org")

SOB_AKPM = f"Signed-off-by: {AKPM.ident}"
SOB_GREG = f"Signed-off-by: {GREG.ident}"
SOB_SASHA = f"Signed-off-by: {SASHA.ident}"
CC_STABLE = "Cc: <stable@vger.kernel.org>"


@dataclass
class SampleWorld:
    path: Path
    shas: dict[str, str] = field(default_factory=dict)
    branches: tuple[str, ...] = ("linux-6.1.y", "linux-6.6.y", "linux-6.12.y")


def _msg(subject: str, body: str, *trailers: str) -> str:
    return f"{subject}\n\n{body.strip()}\n\n" + "\n".join(trailers)


def _fixes(b: WorldBuilder, sha: str) -> str:
    return f'Fixes: {sha[:12]} ("{b.subject(sha)}")'


def _body_of(b: WorldBuilder, sha: str) -> str:
    """The upstream message without its subject line, as stable backports quote it."""
    return b.message(sha).split("\n", 1)[1].strip("\n")


def greg_backport(b: WorldBuilder, up: str, *extra: str) -> str:
    msg = f"{b.subject(up)}\n\ncommit {up} upstream.\n\n{_body_of(b, up)}\n"
    msg += "".join(f"{t}\n" for t in extra) + SOB_GREG
    return b.backport(GREG, up, msg)


def sasha_backport(b: WorldBuilder, up: str, *extra: str) -> str:
    msg = f"{b.subject(up)}\n\n[ Upstream commit {up} ]\n\n{_body_of(b, up)}\n"
    msg += "".join(f"{t}\n" for t in extra) + SOB_SASHA
    return b.backport(SASHA, up, msg)


def release(b: WorldBuilder, version: str, sublevel: str, old_sublevel: str) -> None:
    b.commit(
        GREG,
        f"Linux {version}",
        [Edit("Makefile", f"SUBLEVEL = {old_sublevel}\n", f"SUBLEVEL = {sublevel}\n")],
    )
    b.tag(f"v{version}")


def mainline_release(b: WorldBuilder, major: int, minor: int, old: tuple[int, int]) -> None:
    b.commit(
        LINUS,
        f"Linux {major}.{minor}",
        [
            Edit(
                "Makefile",
                f"VERSION = {old[0]}\nPATCHLEVEL = {old[1]}\n",
                f"VERSION = {major}\nPATCHLEVEL = {minor}\n",
            ),
        ],
    )
    b.tag(f"v{major}.{minor}")


def build_world(path: Path) -> SampleWorld:
    b = WorldBuilder(path, committer=LINUS)
    w = SampleWorld(path=path)
    s = w.shas
    _mainline_to_v6_1(b, s)
    _mainline_to_v6_12(b, s)
    _mainline_after_v6_12(b, s)
    _stable_6_12(b, s)
    _mainline_after_stable_6_12(b, s)
    _mainline_late_fixes(b, s)
    _stable_6_6(b, s)
    _stable_6_1(b, s)
    b.checkout("master")
    return w


def _mainline_to_v6_1(b: WorldBuilder, s: dict[str, str]) -> None:
    s["INIT"] = b.commit(
        LINUS,
        "Initial import of the sample world",
        [Edit(p, None, text) for p, text in files.INITIAL_FILES.items()],
    )
    s["L_HOOKS"] = b.commit(
        AKPM,
        _msg(
            "[PATCH] paravirt: lazy mmu mode hooks.patch",
            "Add the generic hooks that let an architecture batch page table updates.",
            SOB_AKPM,
        ),
        [
            Edit(
                "include/linux/pgtable.h",
                "/* lazy mmu hooks: none yet */",
                "#ifndef __HAVE_ARCH_ENTER_LAZY_MMU_MODE\n"
                "#define arch_enter_lazy_mmu_mode()\tdo {} while (0)\n"
                "#define arch_leave_lazy_mmu_mode()\tdo {} while (0)\n"
                "#endif",
            )
        ],
    )
    s["H0"] = b.commit(
        AKPM,
        _msg(
            "[PATCH] shared page table for hugetlb page",
            "Share PMD page tables between processes mapping the same hugetlb file.",
            SOB_AKPM,
        ),
        [
            Edit("mm/hugetlb.c", "/* pmd sharing: not implemented */", _HUGETLB_SHARE),
            Edit(
                "mm/hugetlb.c",
                "\t\tptl = huge_pte_lock(h, mm, ptep);\n\t\tspin_unlock(ptl);",
                "\t\tptl = huge_pte_lock(h, mm, ptep);\n"
                "\t\thuge_pmd_unshare(mm, vma, address, ptep);\n\t\tspin_unlock(ptl);",
            ),
            Edit(
                "mm/hugetlb.c",
                "\t\tdst_pte = huge_pte_alloc(dst, dst_vma, addr, sz);\n",
                "\t\tdst_pte = huge_pte_alloc(dst, dst_vma, addr, sz);\n"
                "\t\t/* If the pagetables are shared don't copy or take references. */\n"
                "\t\tif (page_count(virt_to_page(dst_pte)) > 1)\n\t\t\tcontinue;\n",
            ),
        ],
    )
    s["L_APPLY"] = b.commit(
        AKPM,
        _msg(
            "mm/apply_to_range: call pte function with lazy updates",
            "Batch the updates made by apply_to_page_range() callbacks.",
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/memory.c",
                "\tmapped_pte = pte = pte_offset_map(pmd, addr);\n\tdo {",
                "\tmapped_pte = pte = pte_offset_map(pmd, addr);\n"
                "\tarch_enter_lazy_mmu_mode();\n\tdo {",
            ),
            Edit(
                "mm/memory.c",
                "\t} while (addr += PAGE_SIZE, addr != end);\n\tpte_unmap",
                "\t} while (addr += PAGE_SIZE, addr != end);\n"
                "\tarch_leave_lazy_mmu_mode();\n\tpte_unmap",
            ),
        ],
    )
    s["VM_TRACK"] = b.commit(
        AKPM,
        _msg(
            "mm/vmalloc: track which page-table levels were modified",
            "Record the modified levels so that arch code can sync page tables, and batch "
            "the PTE updates in lazy MMU mode.",
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/vmalloc.c",
                "struct page **pages, int *nr)\n{",
                "struct page **pages, int *nr,\n\t\tpgtbl_mod_mask *mask)\n{",
            ),
            Edit(
                "mm/vmalloc.c",
                "\t\treturn -ENOMEM;\n\tdo {",
                "\t\treturn -ENOMEM;\n\n\tarch_enter_lazy_mmu_mode();\n\n\tdo {",
            ),
            Edit(
                "mm/vmalloc.c",
                "\t} while (pte++, addr += PAGE_SIZE, addr != end);\n\treturn 0;",
                "\t} while (pte++, addr += PAGE_SIZE, addr != end);\n\n"
                "\tarch_leave_lazy_mmu_mode();\n\t*mask |= PGTBL_PTE_MODIFIED;\n\treturn 0;",
            ),
        ],
    )
    s["XEN_NEST"] = b.commit(
        JUERGEN,
        _msg(
            "x86/xen: allow nesting of same lazy mode",
            "Lazy MMU mode can be entered while already active; count the nesting.",
            f"Signed-off-by: {JUERGEN.ident}",
        ),
        [
            Edit(
                "arch/x86/xen/mmu_pv.c",
                "\tBUG_ON(this_cpu_read(xen_lazy_mode) != XEN_LAZY_NONE);\n",
                "\tif (this_cpu_read(xen_lazy_mode) == mode) {\n"
                "\t\tthis_cpu_inc(xen_lazy_nesting);\n\t\treturn;\n\t}\n\n"
                "\tBUG_ON(this_cpu_read(xen_lazy_mode) != XEN_LAZY_NONE);\n",
            )
        ],
    )
    b.commit(
        AKPM,
        _msg("mm/util: bump helper version", "Unrelated churn.", SOB_AKPM),
        [Edit("mm/util.c", "mm_util_version = 1;", "mm_util_version = 2;")],
    )
    mainline_release(b, 6, 1, (5, 19))


def _mainline_to_v6_12(b: WorldBuilder, s: dict[str, str]) -> None:
    s["L_SETPTES"] = b.commit(
        AKPM,
        _msg(
            "mm: add default definition of set_ptes()",
            "Most architectures can use a loop around set_pte().",
            SOB_AKPM,
        ),
        [Edit("include/linux/pgtable.h", "/* set_ptes: not defined generically yet */", _SET_PTES)],
    )
    s["L_SPARC"] = b.commit(
        AKPM,
        _msg(
            "sparc64: implement the new page table range API",
            "Add set_ptes() for sparc64.",
            SOB_AKPM,
        ),
        [
            Edit(
                "arch/sparc/include/asm/pgtable_64.h",
                "#endif /* _SPARC64_PGTABLE_H */",
                _SPARC_SET_PTES + "\n#endif /* _SPARC64_PGTABLE_H */",
            )
        ],
    )
    s["VM_PREREQ"] = b.commit(
        AKPM,
        _msg(
            "mm/vmalloc: use ptep_get() and check pfn validity when mapping pages",
            "Read PTEs with ptep_get() and refuse pages without a valid pfn.",
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/vmalloc.c",
                "\t\tif (WARN_ON(!pte_none(*pte)))\n\t\t\treturn -EBUSY;\n"
                "\t\tif (WARN_ON(!page))\n\t\t\treturn -ENOMEM;\n",
                "\t\tif (WARN_ON(!pte_none(ptep_get(pte))))\n\t\t\treturn -EBUSY;\n"
                "\t\tif (WARN_ON(!page))\n\t\t\treturn -ENOMEM;\n"
                "\t\tif (WARN_ON(!pfn_valid(page_to_pfn(page))))\n\t\t\treturn -EINVAL;\n",
            )
        ],
    )
    mainline_release(b, 6, 6, (6, 1))
    s["RC"] = b.commit(
        WILL,
        _msg(
            "mm/mmu_gather: flush TLB before freeing batched tables",
            "Freeing a batch of page tables must be preceded by a TLB invalidation.",
            "Cc: <stable@vger.kernel.org> # 6.6.x",
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/mmu_gather.c",
                "\tif (*batch) {\n\t\ttlb_remove_table_free(*batch);",
                "\tif (*batch) {\n\t\ttlb_table_invalidate(tlb);\n"
                "\t\ttlb_remove_table_free(*batch);",
            )
        ],
    )
    s["HX"] = b.commit(
        DAVID,
        _msg(
            "mm/hugetlb: use ptdesc helpers for PMD table sharing",
            "Convert huge_pmd_unshare() to ptdesc accessors.",
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/hugetlb.c",
                "\tBUG_ON(page_count(virt_to_page(ptep)) == 0);\n"
                "\tif (page_count(virt_to_page(ptep)) == 1)\n\t\treturn 0;\n",
                "\tstruct ptdesc *ptdesc = virt_to_ptdesc(ptep);\n\n"
                "\tBUG_ON(ptdesc_ref_count(ptdesc) == 0);\n"
                "\tif (ptdesc_ref_count(ptdesc) == 1)\n\t\treturn 0;\n",
            )
        ],
    )
    b.commit(
        AKPM,
        _msg("mm/util: bump helper version again", "Unrelated churn.", SOB_AKPM),
        [Edit("mm/util.c", "mm_util_version = 2;", "mm_util_version = 3;")],
    )
    mainline_release(b, 6, 12, (6, 6))


def _mainline_after_v6_12(b: WorldBuilder, s: dict[str, str]) -> None:
    s["H1"] = b.commit(
        JANN,
        _msg(
            "mm: hugetlb: independent PMD page table shared count",
            "Count PMD table sharers in the ptdesc instead of relying on the page "
            "refcount, which speculative references can raise.",
            "Link: https://lore.kernel.org/r/20241216071147.3984217-1-jan@example.org",
            _fixes(b, s["H0"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "include/linux/mm_types.h",
                "\tunsigned long __page_mapping;\n",
                "\tunsigned long __page_mapping;\n\tatomic_t pt_share_count;\n",
            ),
            Edit(
                "mm/hugetlb.c",
                "\t\tput_page(virt_to_page(spte));\n",
                "\t\tptdesc_pmd_pts_inc(virt_to_ptdesc(spte));\n",
            ),
            Edit(
                "mm/hugetlb.c",
                "\tBUG_ON(ptdesc_ref_count(ptdesc) == 0);\n"
                "\tif (ptdesc_ref_count(ptdesc) == 1)\n\t\treturn 0;\n",
                "\tif (!ptdesc_pmd_is_shared(ptdesc))\n\t\treturn 0;\n",
            ),
            Edit(
                "mm/hugetlb.c",
                "\tpud_clear(pud);\n\tput_page(virt_to_page(ptep));\n",
                "\tpud_clear(pud);\n\tptdesc_pmd_pts_dec(ptdesc);\n",
            ),
            Edit(
                "mm/hugetlb.c",
                "\treturn page_count(virt_to_page(pte)) > 1;\n",
                "\treturn ptdesc_pmd_is_shared(virt_to_ptdesc(pte));\n",
            ),
        ],
    )
    mainline_release(b, 6, 13, (6, 12))
    b.commit(
        AKPM,
        _msg("mm/util: bump helper version for 6.14", "Unrelated churn.", SOB_AKPM),
        [Edit("mm/util.c", "mm_util_version = 3;", "mm_util_version = 4;")],
    )
    mainline_release(b, 6, 14, (6, 13))
    series = "20250303141542.3371656"
    s["L1"] = b.commit(
        RYAN,
        _msg(
            "mm: fix lazy mmu docs and usage",
            'Patch series "Fix lazy mmu mode", v2.\n\nset_ptes() may be called in lazy MMU '
            "mode; it must not enter and leave the mode itself.",
            f"Link: https://lkml.kernel.org/r/{series}-1-ryan@example.org",
            _fixes(b, s["L_SETPTES"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "include/linux/pgtable.h",
                " * Context: The caller holds the page table lock.\n",
                " * Context: The caller holds the page table lock.  May be called in lazy\n"
                " * MMU mode; it must not enter or leave it.\n",
            ),
            Edit(
                "include/linux/pgtable.h",
                "\tarch_enter_lazy_mmu_mode();\n\tfor (;;) {\n\t\tset_pte(ptep, pte);",
                "\tfor (;;) {\n\t\tset_pte(ptep, pte);",
            ),
            Edit(
                "include/linux/pgtable.h",
                "\t\tpte = pte_next_pfn(pte);\n\t}\n\tarch_leave_lazy_mmu_mode();\n",
                "\t\tpte = pte_next_pfn(pte);\n\t}\n",
            ),
        ],
    )
    s["L2"] = b.commit(
        RYAN,
        _msg(
            "fs/proc/task_mmu: reduce scope of lazy mmu region",
            "Only the PTE loop needs lazy MMU mode.",
            f"Link: https://lkml.kernel.org/r/{series}-2-ryan@example.org",
            SOB_AKPM,
        ),
        [
            Edit(
                "fs/proc/task_mmu.c",
                "\tarch_enter_lazy_mmu_mode();\n\tret = walk_page_range",
                "\tret = walk_page_range",
            ),
            Edit(
                "fs/proc/task_mmu.c",
                "&pagemap_scan_ops, &p);\n\tarch_leave_lazy_mmu_mode();\n",
                "&pagemap_scan_ops, &p);\n",
            ),
            Edit(
                "fs/proc/task_mmu.c",
                "\treturn pagemap_scan_ptes(pmd, start, end, walk);\n",
                "\tarch_enter_lazy_mmu_mode();\n\tret = pagemap_scan_ptes(pmd, start, end, walk);\n"
                "\tarch_leave_lazy_mmu_mode();\n\treturn ret;\n",
            ),
        ],
    )
    s["L3"] = b.commit(
        RYAN,
        _msg(
            "sparc/mm: disable preemption in lazy mmu mode",
            "The per-cpu batch must stay on one CPU while lazy MMU mode is active.",
            f"Link: https://lkml.kernel.org/r/{series}-3-ryan@example.org",
            _fixes(b, s["L_APPLY"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "arch/sparc/mm/tlb.c",
                "\tstruct tlb_batch *tb = this_cpu_ptr(&tlb_batch);\n\n\ttb->active = 1;\n",
                "\tstruct tlb_batch *tb;\n\n\tpreempt_disable();\n"
                "\ttb = this_cpu_ptr(&tlb_batch);\n\ttb->active = 1;\n",
            ),
            Edit(
                "arch/sparc/mm/tlb.c",
                "\ttb->active = 0;\n",
                "\ttb->active = 0;\n\tpreempt_enable();\n",
            ),
        ],
    )
    s["L4"] = b.commit(
        RYAN,
        _msg(
            "sparc/mm: avoid calling arch_enter/leave_lazy_mmu() in set_ptes",
            "set_ptes() may already run in lazy MMU mode.",
            f"Link: https://lkml.kernel.org/r/{series}-4-ryan@example.org",
            _fixes(b, s["L_SPARC"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "arch/sparc/include/asm/pgtable_64.h",
                "\tarch_enter_lazy_mmu_mode();\n\tfor (;;) {",
                "\tfor (;;) {",
            ),
            Edit(
                "arch/sparc/include/asm/pgtable_64.h",
                "\t}\n\tarch_leave_lazy_mmu_mode();\n}",
                "\t}\n}",
            ),
        ],
    )
    s["L5"] = b.revert(
        RYAN,
        s["XEN_NEST"],
        _msg(
            'Revert "x86/xen: allow nesting of same lazy mode"',
            f"This reverts commit {s['XEN_NEST']}.\n\nNesting is handled generically now.",
            f"Link: https://lkml.kernel.org/r/{series}-6-ryan@example.org",
            SOB_AKPM,
        ),
    )
    s["VM_FIX"] = b.commit(
        ALEX,
        _msg(
            "mm/vmalloc: leave lazy MMU mode on PTE mapping error",
            "vmap_pages_pte_range() enters the lazy MMU mode, but fails to leave it in case "
            "an error is encountered.",
            "Link: https://lkml.kernel.org/r/20250623075721.2817094-1-alex@example.org",
            _fixes(b, s["VM_TRACK"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/vmalloc.c",
                "{\n\tpte_t *pte;\n\n\tpte = pte_alloc_kernel",
                "{\n\tint err = 0;\n\tpte_t *pte;\n\n\tpte = pte_alloc_kernel",
            ),
            Edit(
                "mm/vmalloc.c",
                "\t\tif (WARN_ON(!pte_none(ptep_get(pte))))\n\t\t\treturn -EBUSY;\n"
                "\t\tif (WARN_ON(!page))\n\t\t\treturn -ENOMEM;\n"
                "\t\tif (WARN_ON(!pfn_valid(page_to_pfn(page))))\n\t\t\treturn -EINVAL;\n",
                "\t\tif (WARN_ON(!pte_none(ptep_get(pte)))) {\n\t\t\terr = -EBUSY;\n"
                "\t\t\tbreak;\n\t\t}\n\t\tif (WARN_ON(!page)) {\n\t\t\terr = -ENOMEM;\n"
                "\t\t\tbreak;\n\t\t}\n\t\tif (WARN_ON(!pfn_valid(page_to_pfn(page)))) {\n"
                "\t\t\terr = -EINVAL;\n\t\t\tbreak;\n\t\t}\n",
            ),
            Edit(
                "mm/vmalloc.c",
                "\t*mask |= PGTBL_PTE_MODIFIED;\n\treturn 0;",
                "\t*mask |= PGTBL_PTE_MODIFIED;\n\treturn err;",
            ),
        ],
    )
    mainline_release(b, 6, 15, (6, 14))
    s["H2"] = b.commit(
        JANN,
        _msg(
            "mm/hugetlb: unshare page tables during VMA split, not before",
            "Unsharing before the split leaves a window where the tables can be re-shared.",
            _fixes(b, s["H0"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/hugetlb.c",
                "\t\treturn -EINVAL;\n\treturn 0;\n}",
                "\t\treturn -EINVAL;\n\n\t/*\n"
                "\t * PMD sharing is only possible for PUD_SIZE-aligned "
                "ranges; unshare\n\t * the surrounding interval while the split holds the locks."
                "\n\t */\n\tif (addr & ~PUD_MASK)\n"
                "\t\thugetlb_unshare_pmds(vma, ALIGN_DOWN(addr, "
                "PUD_SIZE), ALIGN(addr, PUD_SIZE));\n\treturn 0;\n}",
            )
        ],
    )
    s["H3"] = b.commit(
        JANN,
        _msg(
            "mm/hugetlb: fix huge_pmd_unshare() vs GUP-fast race",
            "GUP-fast can still walk an unshared table; wait for it before reuse.",
            _fixes(b, s["H0"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/hugetlb.c",
                "\tflush_hugetlb_tlb_range(vma, start, end);\n}",
                "\tflush_hugetlb_tlb_range(vma, start, end);\n\t/*\n\t * GUP-fast may still walk "
                "the unshared table: wait for it with an\n\t * IPI to every CPU before the table "
                "can be reused.\n\t */\n\ttlb_remove_table_sync_one();\n}",
            )
        ],
    )
    s["H4"] = b.commit(
        JANN,
        _msg(
            "mm/hugetlb: fix copy_hugetlb_page_range() to use ->pt_share_count",
            "The page refcount no longer says whether a PMD table is shared.",
            _fixes(b, s["H1"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/hugetlb.c",
                "\t\tif (page_count(virt_to_page(dst_pte)) > 1)\n",
                "\t\tif (ptdesc_pmd_is_shared(virt_to_ptdesc(dst_pte)))\n",
            )
        ],
    )
    s["RF"] = b.commit(
        WILL,
        _msg(
            "mm/mmu_gather: fix missed flush on batch allocation failure",
            "When the table batch cannot be allocated the table is freed at once, "
            "without the TLB invalidation that the batched path now does.",
            # A real-world slip: the sha is another commit's, the quoted subject is right.
            f'Fixes: {s["HX"][:12]} ("{b.subject(s["RC"])}")',
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/mmu_gather.c",
                "\t\tif (*batch == NULL) {\n\t\t\ttlb_remove_table_one(table);",
                "\t\tif (*batch == NULL) {\n\t\t\ttlb_table_invalidate(tlb);\n"
                "\t\t\ttlb_remove_table_one(table);",
            )
        ],
    )
    mainline_release(b, 6, 16, (6, 15))


def _stable_6_12(b: WorldBuilder, s: dict[str, str]) -> None:
    b.branch("linux-6.12.y", "v6.12")
    b.commit(GREG, "Linux 6.12.1", [Edit("Makefile", "SUBLEVEL = 0\n", "SUBLEVEL = 1\n")])
    b.tag("v6.12.1")
    s["S12_H1"] = greg_backport(b, s["H1"])
    release(b, "6.12.9", "9", "1")
    s["S12_L1"] = sasha_backport(b, s["L1"])
    s["S12_L3"] = greg_backport(b, s["L3"])
    s["S12_L4"] = sasha_backport(b, s["L4"])
    release(b, "6.12.24", "24", "9")
    s["S12_VM_FIX"] = greg_backport(b, s["VM_FIX"])
    # A backport that lost its upstream reference: only its patch-id links it to H2.
    s["S12_H2"] = b.backport(
        GREG,
        s["H2"],
        _msg(b.subject(s["H2"]), _body_of(b, s["H2"]).split("\n\n", 1)[0], SOB_GREG),
    )
    b.checkout("master")


def _mainline_after_stable_6_12(b: WorldBuilder, s: dict[str, str]) -> None:
    s["L7"] = b.commit(
        RYAN,
        _msg(
            "arm64/mm: Permit lazy_mmu_mode to be nested",
            "Track nesting so an inner leave does not end the outer lazy MMU section.",
            "Cc: <stable@vger.kernel.org> # 6.12.x",
            SOB_AKPM,
        ),
        [
            Edit(
                "arch/arm64/include/asm/pgtable.h",
                "\tVM_WARN_ON(in_interrupt());\n\tset_thread_flag(TIF_LAZY_MMU);\n",
                "\tVM_WARN_ON(in_interrupt());\n\tif (test_thread_flag(TIF_LAZY_MMU))\n"
                "\t\treturn;\n\tset_thread_flag(TIF_LAZY_MMU);\n",
            )
        ],
    )
    s["H5"] = b.commit(
        DAVID,
        _msg(
            "mm/hugetlb: fix hugetlb_pmd_shared()",
            "The stable backports of the shared-count change left hugetlb_pmd_shared() "
            "reading a count that is never raised for the first sharer.",
            _fixes(b, s["S12_H1"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/hugetlb.c",
                "\treturn ptdesc_pmd_is_shared(virt_to_ptdesc(pte));\n",
                "\treturn ptdesc_pmd_pts_count(virt_to_ptdesc(pte)) != 0;\n",
            )
        ],
    )
    s["H6"] = b.commit(
        DAVID,
        _msg(
            "mm/hugetlb: fix excessive IPI broadcasts when unsharing PMD tables using mmu_gather",
            "Only CPUs that may walk the table need the IPI; mmu_gather tracks them.",
            _fixes(b, s["H3"]),
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/hugetlb.c",
                "\t/*\n\t * GUP-fast may still walk the unshared table: wait for it with an\n\t * "
                "IPI to every CPU before the table can be reused.\n\t */\n"
                "\ttlb_remove_table_sync_one();\n",
                "\t/* mmu_gather knows which CPUs may walk the unshared table. */\n"
                "\ttlb_flush_unshared_tables(&tlb);\n",
            )
        ],
    )


def _mainline_late_fixes(b: WorldBuilder, s: dict[str, str]) -> None:
    s["H7"] = b.commit(
        DAVID,
        _msg(
            "mm/hugetlb: fix stale comment about PMD sharing",
            "The comment predates the shared count.",
            # Names a commit from a tree tracker does not follow: unresolved, and flagged.
            'Fixes: 0123456789ab ("mm: hugetlb: rework from another tree")',
            CC_STABLE,
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/hugetlb.c", "/* more unrelated helpers */", "/* helpers unrelated to sharing */"
            )
        ],
    )
    s["L8"] = b.commit(
        RYAN,
        _msg(
            "mm/vmalloc: flush lazy MMU batch before warning",
            "Warn only after the batched updates are visible.",
            f"Cc: <stable@vger.kernel.org> # 6.1.x: {s['VM_PREREQ'][:12]}: "
            f"{b.subject(s['VM_PREREQ'])}",
            SOB_AKPM,
        ),
        [
            Edit(
                "mm/vmalloc.c",
                "int vmap_pages_range(",
                "/* batched: see lazy MMU */\nint vmap_pages_range(",
            )
        ],
    )


def _stable_6_6(b: WorldBuilder, s: dict[str, str]) -> None:
    b.branch("linux-6.6.y", "v6.6")
    s["S66_RC"] = greg_backport(b, s["RC"])
    s["S66_RC_REVERT"] = b.revert(
        GREG,
        s["S66_RC"],
        _msg(
            f'Revert "{b.subject(s["RC"])}"',
            f"This reverts commit {s['S66_RC']} which is\ncommit {s['RC']} upstream.\n\n"
            "It causes boot hangs on 6.6.y without the rest of the batching rework.",
            SOB_GREG,
        ),
    )
    s["S66_HX"] = sasha_backport(
        b, s["HX"], f'Stable-dep-of: {s["H1"][:12]} ("{b.subject(s["H1"])}")'
    )
    s["S66_H1"] = greg_backport(b, s["H1"])
    release(b, "6.6.72", "72", "0")
    s["S66_L1"] = greg_backport(b, s["L1"])
    s["S66_L4"] = sasha_backport(b, s["L4"])
    release(b, "6.6.88", "88", "72")
    b.checkout("master")


def _stable_6_1(b: WorldBuilder, s: dict[str, str]) -> None:
    b.branch("linux-6.1.y", "v6.1")
    s["S61_L3"] = greg_backport(b, s["L3"])
    release(b, "6.1.130", "130", "0")
    b.checkout("master")


_HUGETLB_SHARE = """pte_t *huge_pmd_share(struct mm_struct *mm, struct vm_area_struct *vma,
		      unsigned long addr, pud_t *pud)
{
	pte_t *spte = find_shareable_pmd(vma, addr);

	spin_lock(&mm->page_table_lock);
	if (pud_none(*pud)) {
		pud_populate(mm, pud, (pmd_t *)((unsigned long)spte & PAGE_MASK));
		mm_inc_nr_pmds(mm);
	} else {
		put_page(virt_to_page(spte));
	}
	spin_unlock(&mm->page_table_lock);
	return (pte_t *)pmd_alloc(mm, pud, addr);
}

/* unrelated helpers keep the sharing and unsharing code apart */
static int hugetlb_share_helper_a(void) { return 0; }
static int hugetlb_share_helper_b(void) { return 1; }
static int hugetlb_share_helper_c(void) { return 2; }
static int hugetlb_share_helper_d(void) { return 3; }

int huge_pmd_unshare(struct mm_struct *mm, struct vm_area_struct *vma,
					unsigned long addr, pte_t *ptep)
{
	pud_t *pud = pud_off(mm, addr);

	BUG_ON(page_count(virt_to_page(ptep)) == 0);
	if (page_count(virt_to_page(ptep)) == 1)
		return 0;

	pud_clear(pud);
	put_page(virt_to_page(ptep));
	mm_dec_nr_pmds(mm);
	return 1;
}

/* more unrelated helpers */
static int hugetlb_unshare_helper_a(void) { return 0; }
static int hugetlb_unshare_helper_b(void) { return 1; }
static int hugetlb_unshare_helper_c(void) { return 2; }
static int hugetlb_unshare_helper_d(void) { return 3; }

static inline bool hugetlb_pmd_shared(pte_t *pte)
{
	return page_count(virt_to_page(pte)) > 1;
}"""

_SET_PTES = """#ifndef set_ptes
/*
 * set_ptes - Map consecutive pages to a contiguous range of addresses.
 * Context: The caller holds the page table lock.
 */
static inline void set_ptes(struct mm_struct *mm, unsigned long addr,
		pte_t *ptep, pte_t pte, unsigned int nr)
{
	arch_enter_lazy_mmu_mode();
	for (;;) {
		set_pte(ptep, pte);
		if (--nr == 0)
			break;
		ptep++;
		pte = pte_next_pfn(pte);
	}
	arch_leave_lazy_mmu_mode();
}
#endif"""

_SPARC_SET_PTES = """static inline void set_ptes(struct mm_struct *mm, unsigned long addr,
		pte_t *ptep, pte_t pte, unsigned int nr)
{
	arch_enter_lazy_mmu_mode();
	for (;;) {
		__set_pte_at(mm, addr, ptep, pte, 0);
		if (--nr == 0)
			break;
		ptep++;
		pte_val(pte) += PAGE_SIZE;
		addr += PAGE_SIZE;
	}
	arch_leave_lazy_mmu_mode();
}
#define set_ptes set_ptes
"""
