// name: paths_between
// params: from_db="gene", from_uid="672", to_db="structure", to_uid="", hops=3 (1..4), limit=25 (1..)
// answers: paths between two records, up to `hops` links (at most 4), in either direction; any record of to_db when to_uid is empty
MATCH p = (a)-[*1..4]-(b)
WHERE $from_db IN labels(a) AND a.uid = $from_uid
  AND $to_db IN labels(b) AND ($to_uid = '' OR b.uid = $to_uid)
  AND length(p) <= $hops
RETURN length(p) AS hops,
       substring(reduce(s = '', x IN nodes(p) | s + ' ' + labels(x)[0] + ':' + x.uid), 1) AS route,
       substring(reduce(s = '', x IN relationships(p) | s + ' ' + type(x)), 1) AS via,
       p AS path
ORDER BY hops, route, via
LIMIT $limit
