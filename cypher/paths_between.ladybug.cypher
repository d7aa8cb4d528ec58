// name: paths_between
// params: from_db="gene", from_uid="672", to_db="structure", to_uid="", hops=3, limit=25
// answers: paths between two records, up to `hops` links (at most 4), in either direction; any record of to_db when to_uid is empty
MATCH p = (a)-[* TRAIL 1..4]-(b)
WHERE label(a) = $from_db AND a.uid = $from_uid
  AND label(b) = $to_db AND ($to_uid = '' OR b.uid = $to_uid)
  AND length(p) <= $hops
RETURN length(p) AS hops,
       list_to_string(' ', list_transform(nodes(p), x -> concat(label(x), ':', x.uid))) AS route,
       list_to_string(' ', list_transform(rels(p), x -> label(x))) AS via,
       p AS path
ORDER BY hops, route, via
LIMIT $limit
