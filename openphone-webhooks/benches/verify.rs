
fn main(){}
