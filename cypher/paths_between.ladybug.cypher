// name: paths_between
// params: from_db="gene", from_uid="672", to_db="structure", to_uid="", hops=3 (1..4), limit=25 (1..)
// answers: paths between two records, up to `hops` links (at most 4), in either direction; any record of to_db when to_uid is empty
// LadybugDB 0.22 gives wrong lists from list_transform over nodes(p)/rels(p) on 4-link paths
// (rows that disagree with the path itself, and change between runs), while the path and
// properties(nodes(p), ...) are right: so the route is built from properties(), padded so that
// every index exists (LadybugDB evaluates both arms of a CASE).
MATCH p = (a)-[* TRAIL 1..4]-(b)
WHERE label(a) = $from_db AND a.uid = $from_uid
  AND label(b) = $to_db AND ($to_uid = '' OR b.uid = $to_uid)
  AND length(p) <= $hops
WITH p, length(p) AS hops,
     list_concat(properties(nodes(p), '_LABEL'), ['', '', '']) AS dbs,
     list_concat(properties(nodes(p), 'uid'), ['', '', '']) AS uids
RETURN hops,
       concat(dbs[1], ':', uids[1], ' ', dbs[2], ':', uids[2],
              CASE WHEN hops >= 2 THEN concat(' ', dbs[3], ':', uids[3]) ELSE '' END,
              CASE WHEN hops >= 3 THEN concat(' ', dbs[4], ':', uids[4]) ELSE '' END,
              CASE WHEN hops >= 4 THEN concat(' ', dbs[5], ':', uids[5]) ELSE '' END) AS route,
       list_to_string(' ', properties(rels(p), '_LABEL')) AS via,
       p AS path
ORDER BY hops, route, via
LIMIT $limit
