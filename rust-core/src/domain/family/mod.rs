//! Family proxy accounts (亲情账户) and mutual aid (家庭共济): links between a principal and a
//! proxy, their scopes and limits, and the age and relationship rules that are data. Filled
//! by the family work; the room exists so the session already knows actor and subject apart.
