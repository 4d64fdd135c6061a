#!/usr/bin/env python3
"""Innermost loops of one function in an llc-15 assembly file: spills,
reloads, FMAs and llvm-mca's estimate per iteration. Helper of
tools/codegen_report.sh; not part of the library.

  codegen_loops.py FILE.s FUNCTION MCA_CPU [--options "-DNAME=v ..."]
                   [--mca llvm-mca-15] [--json]
  codegen_loops.py --table OUT_DIR     (markdown rows from the report's JSON)

llc's comments give the loop structure ("This Inner Loop Header", "in Loop:
Header=BBx Depth=n") and the register allocator's stack traffic ("32-byte
Spill", "32-byte Reload", "Folded Reload"). For each innermost loop this
prints the whole loop (all its blocks) and its hot path: one iteration
followed from the header, with the branches the rows-in-lanes kernel takes
when every key is visible to every row (a `cmp $1` + je / jne on a key's
kind is taken as kind 1, a `cmp $2` as not 2; a branch out of the loop is
not taken; the path ends where it returns to the header). Other branches are
guessed not taken and noted. The hot path, without its jumps, goes to
llvm-mca (-iterations=200) for MCA_CPU: cycles per iteration and the most
loaded resources.

With --options holding the kernel's -D values of attn_fwd_fused_lanes
(FL_LANES, FL_KEYS, FL_KB, FL_DB, HEAD_DIM, HEAD_DIM_V), it also sums the
two inner loops per key tile: the FL_KEYS / FL_KB copies of the score loop
(HEAD_DIM iterations each) and the P*V loop (HEAD_DIM_V / FL_DB iterations),
against every FMA at two vector FMAs a cycle.
"""
import json
import re
import subprocess
import sys
import tempfile

LABEL = re.compile(r'^(\.LBB\w+):|^# (%bb\.\d+):')
HDR = re.compile(r'This (Inner )?Loop Header: Depth=(\d+)')
PARENT = re.compile(r'Parent Loop (BB\w+) Depth=(\d+)')
INLOOP = re.compile(r'in Loop: Header=(BB\w+) Depth=(\d+)')


def bb(label):
    """'.LBB1_4' -> 'BB1_4', llc's name of a block in its loop comments"""
    return label[2:] if label.startswith('.L') else label


def function_lines(path, func):
    out, on = [], False
    with open(path) as f:
        for line in f:
            if line.startswith(func + ':'):
                on = True
                continue
            if on and (line.startswith('.Lfunc_end') or re.match(r'^\w.*:\s*(#.*)?$', line)):
                break
            if on:
                out.append(line.rstrip('\n'))
    if not out:
        sys.exit('codegen_loops: function %s not found in %s' % (func, path))
    return out


def blocks_of(lines):
    """[(label, loop header or None, depth, inner_header, [instructions])]"""
    blocks = []
    cur = None
    for line in lines:
        m = LABEL.match(line)
        if m:
            cur = {'label': m.group(1) or m.group(2), 'header': None, 'depth': 0,
                   'inner': False, 'parent': None, 'ins': []}
            blocks.append(cur)
        if cur is None:
            cur = {'label': '<entry>', 'header': None, 'depth': 0, 'inner': False,
                   'parent': None, 'ins': []}
            blocks.append(cur)
        pm = PARENT.search(line)
        if pm and not cur['ins']:
            cur['parent'] = pm.group(1)
        h = HDR.search(line)
        if h and not cur['ins']:
            cur['header'] = bb(cur['label'])
            cur['depth'] = int(h.group(2))
            cur['inner'] = bool(h.group(1))
            continue
        il = INLOOP.search(line)
        if il and not cur['ins'] and cur['header'] is None:
            cur['header'] = il.group(1)
            cur['depth'] = int(il.group(2))
            continue
        s = line.strip()
        if m or not s or s.startswith('#') or s.startswith('.'):
            continue
        cur['ins'].append(s)
    return blocks


def mnemonic(ins):
    return ins.split()[0]


def classify(ins):
    mn = mnemonic(ins)
    c = {}
    if 'Spill' in ins:
        c['spill'] = 1
        if re.search(r'# (16|32|64)-byte', ins):
            c['vspill'] = 1
    if 'Reload' in ins:
        c['reload'] = 1
        if re.search(r'# (16|32|64)-byte', ins):
            c['vreload'] = 1
    if re.match(r'vf(n)?m(add|sub)', mn):
        c['fma'] = 1
    if mn in ('vmulps', 'vaddps'):
        c[mn] = 1
    if mn.startswith('vbroadcastss') and '(' in ins:
        c['bcast_mem'] = 1
    if mn in ('vmovaps', 'vmovups') and re.match(r'\S+\s+\S*\(.*\),\s*%[xyz]mm', ins):
        c['vload'] = 1
    if mn in ('vmovaps', 'vmovups') and re.match(r'\S+\s+%[xyz]mm\d+,\s*\S*\(', ins):
        c['vstore'] = 1
    if mn in ('vmovaps', 'vmovups', 'vmovdqa', 'vmovdqu', 'vmovdqa64', 'vmovdqu64') \
            and re.match(r'\S+\s+%[xyz]mm\d+,\s*%[xyz]mm\d+$', ins.split('#')[0].strip()):
        c['vcopy'] = 1
    if mn in ('vpextrq', 'vmovq', 'vpbroadcastq', 'vextracti128', 'vpaddq', 'vextracti32x4',
              'vextracti64x4', 'vpextrd', 'vmovd'):
        c['vec_index'] = 1
    return c


def stats(ins_list):
    t = {'ins': len(ins_list)}
    for ins in ins_list:
        for k, v in classify(ins).items():
            t[k] = t.get(k, 0) + v
    return t


def jump(ins):
    m = re.match(r'(j\w+)\s+(\.LBB\w+)', ins)
    return (m.group(1), m.group(2)) if m else (None, None)


def hot_path(loop_blocks, header):
    """Instructions of one iteration along the all-visible path."""
    order = [b['label'] for b in loop_blocks]
    by = {b['label']: b for b in loop_blocks}
    path, notes = [], []
    i = [bb(x) for x in order].index(header)
    steps = 0
    last_cmp = None
    while True:
        steps += 1
        if steps > 10000:
            notes.append('path did not return to the header')
            break
        b = by[order[i]]
        nxt = None
        ended = False
        for ins in b['ins']:
            mn = mnemonic(ins)
            if mn.startswith('cmp') or mn.startswith('test'):
                last_cmp = ins
            if mn.startswith('j'):
                kind, target = jump(ins)
                if kind is None:
                    notes.append('indirect jump: ' + ins)
                    ended = True
                    break
                tl = target
                if kind == 'jmp':
                    taken = True
                else:
                    inside = tl in by
                    if bb(tl) == header:
                        # the latch: returning to the header ends the iteration
                        taken = True
                    elif not inside:
                        taken = False
                    else:
                        m = re.match(r'cmp\w*\s+\$(\d+),', last_cmp or '')
                        if m and m.group(1) in ('1', '2') and kind in ('je', 'jne'):
                            is_eq = (m.group(1) == '1')  # kind == 1 on the hot path
                            taken = (kind == 'je') == is_eq
                        else:
                            taken = False
                            notes.append('guessed not taken: %s after %s' % (ins, last_cmp))
                if taken:
                    if bb(tl) == header:
                        ended = True
                    elif tl not in by:
                        notes.append('left the loop: ' + ins)
                        ended = True
                    else:
                        nxt = order.index(tl)
                    break
                continue
            path.append(ins)
        if ended:
            break
        if nxt is None:
            nxt = i + 1
            if nxt >= len(order):  # fell out of the loop's blocks: back to the header
                break
        if bb(order[nxt]) == header:
            break
        i = nxt
    return path, notes


def mca(ins_list, cpu, tool):
    body = [s.split('#')[0].rstrip() for s in ins_list]
    with tempfile.NamedTemporaryFile('w', suffix='.s', delete=False) as f:
        f.write('\n'.join(body) + '\n')
        name = f.name
    r = subprocess.run([tool, '-mcpu=' + cpu, '-iterations=200', name],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {'error': r.stderr.strip()[:300]}
    out = r.stdout
    cyc = int(re.search(r'Total Cycles:\s+(\d+)', out).group(1))
    it = int(re.search(r'Iterations:\s+(\d+)', out).group(1))
    rthr = float(re.search(r'Block RThroughput:\s+([\d.]+)', out).group(1))
    res = {'cycles_per_iter': round(cyc / it, 2), 'block_rthroughput': rthr}
    # resource pressure per iteration: names line, then values line
    m = re.search(r'Resources:\n(.*?)\n\n', out, re.S)
    names = {}
    if m:
        for line in m.group(1).splitlines():
            mm = re.match(r'\[(\w+(?:\.\d+)?)\]\s+-\s+(\S+)', line.strip())
            if mm:
                names[mm.group(1)] = mm.group(2)
    m = re.search(r'Resource pressure per iteration:\n(.*?)\n(.*?)\n', out)
    if m:
        cols = re.findall(r'\[(\w+(?:\.\d+)?)\]', m.group(1))
        vals = m.group(2).split()
        pairs = []
        for c, v in zip(cols, vals):
            try:
                pairs.append((float(v), names.get(c, c)))
            except ValueError:
                pass
        pairs.sort(reverse=True)
        res['top_resources'] = [(n, v) for v, n in pairs[:3]]
    return res


def defines(options):
    return {k: int(v) for k, v in re.findall(r'-D(\w+)=(-?\d+)', options or '')}


def lanes_summary(loops, blocks, d, width, fma_per_cycle):
    """The rows-in-lanes kernel's two inner loops, per tile of FL_KEYS keys
    x FL_LANES rows: the score loops (FL_KEYS / FL_KB single-block copies,
    HEAD_DIM iterations each) and the P*V loop (HEAD_DIM_V / FL_DB
    iterations, each all FL_KEYS keys)."""
    per = max(1, d['FL_LANES'] // width)
    want_s = d['FL_KB'] * per
    want_p = d['FL_KEYS'] * d['FL_DB'] * per
    score = [lp for lp in loops if lp['blocks'] == 1 and lp['path'].get('fma', 0) == want_s]
    pv = [lp for lp in loops if lp['path'].get('fma', 0) == want_p and lp not in score]
    out = {'per': per, 'score_copies': len(score), 'pv_loops': len(pv)}
    if len(pv) > 1:
        # a straight-line loop for tiles every lane sees whole, besides the
        # general one with a test per key: the former is the hot one
        fast = [lp for lp in pv if lp['blocks'] == 1]
        if len(fast) == 1:
            out['pv_general_cycles'] = [lp['mca'].get('cycles_per_iter') for lp in pv
                                        if lp is not fast[0]]
            pv = fast
    if len(score) != d['FL_KEYS'] // d['FL_KB'] or any(lp['path']['fma'] != want_s for lp in score):
        out['warning'] = 'score loops do not look as expected'
    if len(pv) != 1 or pv[0]['path']['fma'] != want_p:
        out['warning'] = out.get('warning', '') + ' P*V loop does not look as expected'
    if 'warning' in out:
        return out
    sc = [lp['mca'].get('cycles_per_iter') for lp in score]
    out['score'] = {
        'ins': [lp['path']['ins'] for lp in score],
        'fma': want_s,
        'spill': [lp['path'].get('spill', 0) for lp in score],
        'reload': [lp['path'].get('reload', 0) for lp in score],
        'vec_index': [lp['path'].get('vec_index', 0) for lp in score],
        'cycles': sc,
        'tile_cycles': round(sum(sc) * d['HEAD_DIM'], 0),
        'top': score[-1]['mca'].get('top_resources'),
    }
    p = pv[0]
    out['pv'] = {
        'ins': p['path']['ins'], 'fma': want_p, 'spill': p['path'].get('spill', 0),
        'vreload': p['path'].get('vreload', 0),
        'sreload': p['path'].get('reload', 0) - p['path'].get('vreload', 0),
        'cycles': p['mca'].get('cycles_per_iter'),
        'tile_cycles': round(p['mca'].get('cycles_per_iter') * d['HEAD_DIM_V'] / d['FL_DB'], 0),
        'top': p['mca'].get('top_resources'),
    }
    # the ideal: every FMA of the tile at the CPU's vector FMA rate
    fmas = d['FL_KEYS'] * per * (d['HEAD_DIM'] + d['HEAD_DIM_V'])
    out['ideal_tile_cycles'] = fmas / fma_per_cycle
    tot = out['score']['tile_cycles'] + out['pv']['tile_cycles']
    out['tile_cycles'] = tot
    # per 256 row-key pairs (a 16 x 16 tile), so FL_LANES 8 and 16 compare
    out['cycles_per_256_pairs'] = round(tot * 256 / (d['FL_KEYS'] * d['FL_LANES']), 0)
    out['fma_efficiency'] = round(out['ideal_tile_cycles'] / tot, 3)
    # the tile loop's own blocks (softmax, masks, rescale; every branch, static)
    parents = {lp.get('parent') for lp in score + pv}
    if len(parents) == 1:
        hdr = parents.pop()
        own = [x for b in blocks if b['header'] == hdr for x in b['ins']]
        out['tile_body'] = stats(own)
        # an upper bound: every one of its blocks once, cold ones included
        out['tile_body']['mca_all_blocks'] = mca(
            [x for x in own if not mnemonic(x).startswith('j')], cpu_of_summary[0],
            tool_of_summary[0]).get('cycles_per_iter')
    return out


cpu_of_summary, tool_of_summary = [None], [None]

FMA_PER_CYCLE = {'haswell': 2, 'skylake-avx512': 2, 'skylake': 2, 'znver1': 1, 'znver2': 2,
                 'znver3': 2}


def table(out_dir):
    """Markdown rows from OUT_DIR/*/loops.*.json (tools/codegen_report.sh)."""
    import glob
    import os
    rows = []
    for f in sorted(glob.glob(os.path.join(out_dir, '*', 'loops.*.json'))):
        j = json.load(open(f))
        s = j.get('lanes_summary')
        name = os.path.basename(os.path.dirname(f))
        if not s or 'score' not in s:
            continue
        sc, pv = s['score'], s['pv']
        cyc = sorted(set(sc['cycles']))
        cells = [
            name, j['cpu'],
            '/'.join(str(x) for x in sorted(set(sc['ins']))), str(sc['fma']),
            '%s / %s' % ('/'.join(str(x) for x in sorted(set(sc['spill']))),
                         '/'.join(str(x) for x in sorted(set(sc['reload'])))),
            '/'.join(str(x) for x in sorted(set(sc['vec_index']))),
            '/'.join('%.2f' % x for x in cyc), '%d' % sc['tile_cycles'],
            str(pv['ins']), str(pv['fma']), str(pv['spill']),
            '%d / %d' % (pv['vreload'], pv['sreload']),
            '%.1f' % pv['cycles'], '%d' % pv['tile_cycles'],
            '%d' % s['cycles_per_256_pairs'], '%.2f' % s['fma_efficiency'],
            '%.0f' % s['tile_body']['mca_all_blocks'] if s.get('tile_body') else '-']
        rows.append('| ' + ' | '.join(cells) + ' |')
    print('| config | mca cpu | score ins/it | FMA/it | spill st / reloads | vidx/it | '
          'cyc/it | cyc/tile | P*V ins/it | FMA/it | spill st | reloads vec / scalar | '
          'cyc/it | cyc/tile | both, per 256 pairs | FMA eff. | rest of tile (upper) |')
    print('|' + '---|' * 17)
    for r in rows:
        print(r)


def main():
    args = sys.argv[1:]
    if args and args[0] == '--table':
        table(args[1])
        return
    as_json = '--json' in args
    args = [a for a in args if a != '--json']
    tool = 'llvm-mca-15'
    options = None
    if '--mca' in args:
        i = args.index('--mca')
        tool = args[i + 1]
        del args[i:i + 2]
    if '--options' in args:
        i = args.index('--options')
        options = args[i + 1]
        del args[i:i + 2]
    path, func, cpu = args[:3]
    lines = function_lines(path, func)
    width = 16 if any('zmm' in x for x in lines) else 8
    blocks = blocks_of(lines)
    total = stats([x for b in blocks for x in b['ins']])
    loops = []
    for b in blocks:
        if not b['inner']:
            continue
        hdr = b['header']
        lb = [x for x in blocks if x['header'] == hdr and x['depth'] == b['depth']]
        allins = [x for y in lb for x in y['ins']]
        path_ins, notes = hot_path(lb, hdr)
        loop = {'header': hdr, 'depth': b['depth'], 'parent': b['parent'], 'blocks': len(lb),
                'all': stats(allins), 'path': stats(path_ins), 'notes': notes}
        if stats(path_ins).get('fma', 0) or stats(path_ins).get('vmulps', 0):
            loop['mca'] = mca(path_ins, cpu, tool)
        loops.append(loop)
    d = defines(options)
    summary = None
    cpu_of_summary[0], tool_of_summary[0] = cpu, tool
    if 'FL_LANES' in d and cpu in FMA_PER_CYCLE:
        summary = lanes_summary(loops, blocks, d, width, FMA_PER_CYCLE[cpu])
    if as_json:
        json.dump({'function': func, 'cpu': cpu, 'vector_width': width, 'defines': d,
                   'function_stats': total, 'loops': loops, 'lanes_summary': summary},
                  sys.stdout, indent=1)
        print()
        return
    print('%s (%d-float vectors), llvm-mca -mcpu=%s: %d instructions, %d spill stores, '
          '%d reloads in the whole function'
          % (func, width, cpu, total['ins'], total.get('spill', 0), total.get('reload', 0)))
    print('innermost loops, hot path of one iteration (vrel/srel: vector/scalar reloads, vidx: '
          'vector index moves):')
    print('%-9s %-9s %4s | %5s %5s %6s %4s %4s %5s %5s %5s | %7s %7s  %s' %
          ('loop', 'parent', 'blks', 'ins', 'fma', 'mul+add', 'bcst', 'spil', 'vrel', 'srel',
           'vidx', 'cyc/it', 'rthru', 'top resources (cycles/iter)'))
    for lp in loops:
        p = lp['path']
        m = lp.get('mca', {})
        top = ', '.join('%s %.1f' % (n, v) for n, v in m.get('top_resources', []))
        print('%-9s %-9s %4d | %5d %5d %6d %4d %4d %5d %5d %5d | %7s %7s  %s' % (
            lp['header'], lp['parent'] or '-', lp['blocks'], p['ins'], p.get('fma', 0),
            p.get('vmulps', 0) + p.get('vaddps', 0), p.get('bcast_mem', 0), p.get('spill', 0),
            p.get('vreload', 0), p.get('reload', 0) - p.get('vreload', 0), p.get('vec_index', 0),
            m.get('cycles_per_iter', '-'), m.get('block_rthroughput', '-'), top))
        for n in lp['notes'][:3]:
            print('          note: ' + n)
    if summary:
        print('rows-in-lanes summary: ' + json.dumps(summary))


if __name__ == '__main__':
    main()
